"""The sentence-template bank the call generator speaks from.

Templates live in package YAML (``templates/common.yaml``, and the scenarios of
``templates/scenarios.yaml`` (telecom) and ``templates/industries.yaml`` (other hotlines)) so that a
centre can add phrasing without code. Each group of templates (same scope, speaker and kind) is split
into train/dev/test by a hash of the template ids alone, never by a corpus seed: two corpora made with
different seeds hold out the same sentences, so an ASR model is always tested on wording it never saw.

The loader is strict because a bad template silently corrupts labels: an Arabic digit or Latin letter
cannot be spoken by espeak-ng ``cmn`` the way the transcript says, a typo in a slot name would crash a
worker mid-corpus, and a "polite" template that reads back a full ID number would teach the scorer the
wrong thing. Every such problem is a ``ValueError`` naming the template.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import numpy as np
import yaml

from callqa.data.constants import AGENT, CUSTOMER, SPEAKERS, SPLITS
from callqa.data.synth.slots import FULL_NUMBER_SLOTS, LAST4_SLOTS, SLOT_NAMES

COMMON: Final = "common"
_PACKAGE: Final = "callqa.data.synth"
_FOLDER: Final = "templates"

#: Kinds every bank defines in common.yaml; a scenario may override any of them (callback greets outbound).
_COMMON_AGENT_KINDS: Final = (
    "greeting", "greeting_bad", "verify", "verify_curt", "probe_curt", "hold", "hold_return", "apology",
    "soothe", "forbidden", "leak", "confirm_masked", "impatient", "ack", "anything_else", "farewell",
    "closing_bad",
)  # fmt: skip
_COMMON_CUSTOMER_KINDS: Final = (
    "verify_answer",
    "ack",
    "thanks",
    "complain",
    "still_angry",
    "calmed",
    "no_more",
    "backchannel",
)
COMMON_KINDS: Final[Mapping[str, frozenset[str]]] = {
    AGENT: frozenset(_COMMON_AGENT_KINDS),
    CUSTOMER: frozenset(_COMMON_CUSTOMER_KINDS),
}
#: Kinds every scenario must define, because only the scenario knows its problem and its answers.
SCENARIO_KINDS: Final[Mapping[str, frozenset[str]]] = {
    AGENT: frozenset({"probe", "resolve", "unresolved"}),
    CUSTOMER: frozenset({"issue", "detail", "followup"}),
}
#: A group needs one template per split.
MIN_GROUP: Final = 3
TEST_SHARE: Final = 0.15
DEV_SHARE: Final = 0.15

_PUNCTUATION: Final = "，。？！、"
_CJK: Final = re.compile(r"[\u4e00-\u9fff]")
_CURT_KINDS: Final = frozenset(
    {"greeting_bad", "verify_curt", "probe_curt", "impatient", "closing_bad", "forbidden"}
)
_POLITE_WORDS: Final = ("您", "请", "谢谢")

#: (speaker, kind) -> slots of which a template must use at least one; the labels rely on them.
_NEEDS_SLOT: Final[Mapping[tuple[str, str], frozenset[str]]] = {
    (AGENT, "greeting"): frozenset({"agent_no"}),
    (AGENT, "leak"): FULL_NUMBER_SLOTS,
    (AGENT, "confirm_masked"): LAST4_SLOTS,
    (CUSTOMER, "verify_answer"): frozenset(
        {"id_last4", "customer_name", "phone", "phone_spoken", "phone_last4"}
    ),
}
#: (speaker, kind) -> words of which a template must contain at least one (what an inspector listens for).
_NEEDS_WORD: Final[Mapping[tuple[str, str], tuple[str, ...]]] = {
    (AGENT, "hold"): ("稍等",),
    (AGENT, "hold_return"): ("等",),
    (AGENT, "apology"): ("抱歉", "对不起", "不好意思", "歉意"),
    (AGENT, "farewell"): ("评价", "满意度", "评分", "打分"),
    (AGENT, "anything_else"): ("其他", "别的", "还有"),
    (AGENT, "verify"): ("您", "请"),
    (AGENT, "probe"): ("您", "请"),
}


@dataclass(frozen=True)
class Template:
    """One sentence pattern; ``id`` is stable across loads so that splits and corpus records can cite it."""

    id: str
    scope: str
    speaker: str
    kind: str
    text: str
    split: str


def _split_key(template_id: str) -> tuple[str, str]:
    return hashlib.sha256(template_id.encode("utf-8")).hexdigest(), template_id


def assign_splits(ids: list[str]) -> dict[str, str]:
    """Split one group by id hash so the held-out sentences never depend on a corpus seed or input order."""
    if len(ids) < MIN_GROUP:
        raise ValueError(
            f"a template group needs at least {MIN_GROUP} templates to split, got {len(ids)}: {ids}"
        )
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate template ids: {sorted(ids)}")
    ordered = sorted(ids, key=_split_key)
    n_test = max(1, round(TEST_SHARE * len(ids)))
    n_dev = max(1, round(DEV_SHARE * len(ids)))
    splits = ["test"] * n_test + ["dev"] * n_dev + ["train"] * (len(ids) - n_test - n_dev)
    return dict(zip(ordered, splits, strict=True))


def _slots_of(template_id: str, text: str) -> set[str]:
    """Slot names used by a text; positional fields, conversions and format specs are rejected."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"template {template_id}: malformed braces in {text!r}: {exc}") from None
    names: set[str] = set()
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if spec or conversion or name not in SLOT_NAMES:
            raise ValueError(f"template {template_id}: unknown slot {{{name}}} in {text!r}")
        names.add(name)
    return names


def _check_spoken(where: str, text: str) -> None:
    """Only Chinese characters and Chinese punctuation can be both spoken by espeak-ng and transcribed."""
    if not text:
        raise ValueError(f"{where}: empty text")
    for ch in text:
        if ch.isascii() and ch.isdigit():
            raise ValueError(
                f"{where}: Arabic digit {ch!r} in {text!r}; write numbers in Chinese or use a slot"
            )
        if ch.isascii() and ch.isalpha():
            raise ValueError(f"{where}: Latin letter {ch!r} in {text!r}")
        if not (_CJK.fullmatch(ch) or ch in _PUNCTUATION):
            raise ValueError(f"{where}: character {ch!r} in {text!r} is not Chinese or ，。？！、")


def _check_template(template_id: str, speaker: str, kind: str, text: str) -> None:
    slots = _slots_of(template_id, text)
    _check_spoken(f"template {template_id}", re.sub(r"\{[a-z_0-9]+\}", "", text))
    needed = _NEEDS_SLOT.get((speaker, kind))
    if needed and not slots & needed:
        raise ValueError(
            f"template {template_id}: a {speaker}.{kind} must use one of {sorted(needed)}: {text!r}"
        )
    words = _NEEDS_WORD.get((speaker, kind))
    if words and not any(w in text for w in words):
        raise ValueError(f"template {template_id}: a {speaker}.{kind} must contain one of {words}: {text!r}")
    if speaker == AGENT and kind != "leak" and slots & FULL_NUMBER_SLOTS:
        raise ValueError(f"template {template_id}: only agent.leak may read back a full number: {text!r}")
    if speaker == AGENT and kind == "greeting_bad" and "agent_no" in slots:
        raise ValueError(f"template {template_id}: a bad greeting must not state the agent id: {text!r}")
    if speaker == AGENT and kind in _CURT_KINDS and any(w in text for w in _POLITE_WORDS):
        raise ValueError(f"template {template_id}: a curt {kind} must not contain {_POLITE_WORDS}: {text!r}")


def _build_group(scope: str, speaker: str, kind: str, texts: Any) -> list[Template]:
    where = f"{scope}.{speaker}.{kind}"
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{where}: expected a list of strings (quote entries that start with '{{')")
    if len(texts) < MIN_GROUP:
        raise ValueError(f"{where}: {len(texts)} templates, need at least {MIN_GROUP} (one per split)")
    ids = [f"{where}.{i:02d}" for i in range(len(texts))]
    for template_id, text in zip(ids, texts, strict=True):
        _check_template(template_id, speaker, kind, text)
    splits = assign_splits(ids)
    return [Template(i, scope, speaker, kind, t, splits[i]) for i, t in zip(ids, texts, strict=True)]


def _build_speakers(
    scope: str,
    data: Mapping[str, Any],
    allowed: Mapping[str, frozenset[str]],
    required: Mapping[str, frozenset[str]],
) -> list[Template]:
    out: list[Template] = []
    for speaker in SPEAKERS:
        groups = data.get(speaker) or {}
        if not isinstance(groups, Mapping):
            raise ValueError(f"{scope}.{speaker}: expected a mapping of kind -> templates")
        unknown = set(groups) - allowed[speaker]
        missing = required[speaker] - set(groups)
        if unknown or missing:
            raise ValueError(
                f"{scope}.{speaker}: unknown kinds {sorted(unknown)}, missing kinds {sorted(missing)}"
            )
        for kind, texts in groups.items():
            out.extend(_build_group(scope, speaker, kind, texts))
    return out


def _scenario_slot_lists(scenario: str, raw: Any) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{scenario}.slots: expected a mapping of slot -> values")
    lists: dict[str, list[str]] = {}
    for name, values in raw.items():
        if name not in SLOT_NAMES:
            raise ValueError(f"{scenario}.slots: unknown slot {name!r}")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{scenario}.slots.{name}: expected a non-empty list of strings")
        for value in values:
            _check_spoken(f"{scenario}.slots.{name}", value)
        lists[name] = list(values)
    return lists


class TemplateBank:
    """All templates, indexed by (scope, speaker, kind); scenario groups shadow common ones."""

    def __init__(
        self,
        templates: Iterable[Template],
        names_zh: Mapping[str, str],
        slot_lists: Mapping[str, dict[str, list[str]]],
    ) -> None:
        self._templates = tuple(templates)
        self._names_zh = dict(names_zh)
        self._slot_lists = {k: dict(v) for k, v in slot_lists.items()}
        self._groups: dict[tuple[str, str, str], list[Template]] = {}
        for t in self._templates:
            self._groups.setdefault((t.scope, t.speaker, t.kind), []).append(t)

    @classmethod
    def load(cls) -> TemplateBank:
        """The packaged bank, parsed once per process (workers call this for every call)."""
        return _load_packaged()

    @classmethod
    def from_data(cls, common: Any, scenarios: Any) -> TemplateBank:
        """Validate and index already-parsed YAML; what ``load`` does, exposed so edits can be checked."""
        if not isinstance(common, Mapping) or set(common) - set(SPEAKERS):
            raise ValueError(f"common.yaml: expected top-level keys {list(SPEAKERS)}")
        if not isinstance(scenarios, Mapping) or not scenarios:
            raise ValueError("scenarios.yaml: expected a non-empty mapping of scenario id -> scenario")
        templates = _build_speakers(COMMON, common, COMMON_KINDS, COMMON_KINDS)
        allowed = {s: COMMON_KINDS[s] | SCENARIO_KINDS[s] for s in SPEAKERS}
        names_zh: dict[str, str] = {}
        slot_lists: dict[str, dict[str, list[str]]] = {}
        for scenario, spec in scenarios.items():
            if (
                not isinstance(scenario, str)
                or not re.fullmatch(r"[a-z][a-z_]*", scenario)
                or scenario == COMMON
            ):
                raise ValueError(f"scenarios.yaml: bad scenario id {scenario!r}")
            if not isinstance(spec, Mapping) or set(spec) - {"name_zh", "slots", *SPEAKERS}:
                raise ValueError(f"{scenario}: expected keys name_zh, slots, {', '.join(SPEAKERS)}")
            name_zh = spec.get("name_zh")
            if not isinstance(name_zh, str):
                raise ValueError(f"{scenario}.name_zh: missing")
            _check_spoken(f"{scenario}.name_zh", name_zh)
            names_zh[scenario] = name_zh
            slot_lists[scenario] = _scenario_slot_lists(scenario, spec.get("slots"))
            templates += _build_speakers(scenario, spec, allowed, SCENARIO_KINDS)
        return cls(templates, names_zh, slot_lists)

    @property
    def scenarios(self) -> list[str]:
        """Scenario ids in YAML order (a copy: the bank is shared by every call in a process)."""
        return list(self._names_zh)

    def _require_scenario(self, scenario: str) -> None:
        if scenario not in self._names_zh:
            raise KeyError(f"unknown scenario {scenario!r}; known: {self.scenarios}")

    def scenario_name_zh(self, scenario: str) -> str:
        self._require_scenario(scenario)
        return self._names_zh[scenario]

    def scenario_slots(self, scenario: str) -> dict[str, list[str]]:
        """Slot value lists for ``sample_slots``; a copy, so callers cannot alter the shared bank."""
        self._require_scenario(scenario)
        return {k: list(v) for k, v in self._slot_lists[scenario].items()}

    def candidates(self, speaker: str, kind: str, split: str, scenario: str | None = None) -> list[Template]:
        """Templates of ``split`` for a step; a scenario's own group wins over the common one."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        scope = COMMON
        if scenario is not None:
            self._require_scenario(scenario)
            if (scenario, speaker, kind) in self._groups:
                scope = scenario
        return [t for t in self._groups.get((scope, speaker, kind), []) if t.split == split]

    def pick(
        self, rng: np.random.Generator, speaker: str, kind: str, split: str, scenario: str | None = None
    ) -> Template:
        """One template drawn from ``rng``, so a call is reproducible from its seed."""
        found = self.candidates(speaker, kind, split, scenario)
        if not found:
            raise KeyError(f"no {speaker}.{kind} templates for split {split!r} (scenario {scenario!r})")
        return found[int(rng.integers(len(found)))]

    def all(self) -> list[Template]:
        return list(self._templates)

    def kinds(self, speaker: str) -> set[str]:
        return {kind for (_, s, kind) in self._groups if s == speaker}


def _read_yaml(name: str) -> Any:
    text = resources.files(_PACKAGE).joinpath(_FOLDER, name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


#: Scenario files, read in this order; a scenario id may appear in only one of them.
SCENARIO_FILES: Final = ("scenarios.yaml", "industries.yaml")


def packaged_scenarios() -> dict[str, Any]:
    """Every packaged scenario in file order, so that scenario order (and with it each corpus) is fixed."""
    merged: dict[str, Any] = {}
    for name in SCENARIO_FILES:
        data = _read_yaml(name)
        if not isinstance(data, Mapping):
            raise ValueError(f"{name}: expected a mapping of scenario id -> scenario")
        twice = sorted(set(merged) & set(data))
        if twice:
            raise ValueError(f"{name}: scenarios {twice} are already defined in an earlier file")
        merged.update(data)
    return merged


@functools.lru_cache(maxsize=1)
def _load_packaged() -> TemplateBank:
    return TemplateBank.from_data(_read_yaml("common.yaml"), packaged_scenarios())
