"""The hand-written generalisation dev set, rendered into an ordinary corpus folder.

The generator's templates are what the ASR base learnt; its test split holds out templates but not the
generator's style. ``data/handwritten/gen-dev.yaml`` is free colloquial speech written by hand in
industries the generator does not have, so its CER says how far a model generalises beyond templates.
It is rendered with held-out (test) voices through the same espeak voices, telephone channel and
timeline code as the corpus, and every call is split ``test``: nothing may train or tune on it, and the
generator never reads it (tests check both).

The output is a normal corpus folder (calls.jsonl, utterances.jsonl, corpus.json), so every tool reads
it: ``callqa evaluate asr MODEL --corpus DIR``. It carries no inspections and no defects.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np
import yaml

from callqa.data.constants import AGENT, CHANNEL_OF, CUSTOMER, EMOTIONS, SAMPLE_RATE, SPEAKERS
from callqa.data.files import atomic_dir, write_json, write_jsonl
from callqa.data.schema import CallRecord, Truth, Turn
from callqa.data.segments import call_to_utterances
from callqa.data.synth.generate import _fingerprint, _run
from callqa.data.synth.render import Line, mix_and_write, timed_turns
from callqa.data.synth.timeline import TimingRules, lay_out
from callqa.data.synth.voices import ESPEAK_RATE, sample_voice, synthesize

log = logging.getLogger(__name__)

SET_NAME: Final = "gen-dev"
SPLIT: Final = "test"
_PACKAGE: Final = "callqa.data"
_FILE: Final = ("handwritten", f"{SET_NAME}.yaml")
#: Bumped whenever the same seed would render a different folder (the text or the rendering changed).
HANDWRITTEN_VERSION: Final = "1.0"
_START: Final = datetime(2026, 3, 2, 9, 0)


@dataclass(frozen=True)
class HandTurn:
    speaker: str
    text: str
    emotion: str
    #: Seconds of silence before the turn (negative: it starts over the previous one); None: natural.
    gap: float | None = None


@dataclass(frozen=True)
class Dialogue:
    id: str
    industry: str
    turns: tuple[HandTurn, ...]


def handwritten_path() -> Path:
    return Path(str(resources.files(_PACKAGE).joinpath(*_FILE)))


def parse_dialogues(data: Any, where: str) -> list[Dialogue]:
    """Validate the YAML: a bad entry is a ValueError naming the file, the dialogue and the turn."""
    if not isinstance(data, dict) or not isinstance(data.get("dialogues"), list) or not data["dialogues"]:
        raise ValueError(f"{where}: expected a top-level 'dialogues' list")
    out: list[Dialogue] = []
    seen: set[str] = set()
    for i, d in enumerate(data["dialogues"]):
        if (
            not isinstance(d, dict)
            or not isinstance(d.get("id"), str)
            or not isinstance(d.get("industry"), str)
        ):
            raise ValueError(f"{where}: dialogues.{i}: expected id, industry and turns")
        if d["id"] in seen:
            raise ValueError(f"{where}: dialogue {d['id']!r} appears twice")
        seen.add(d["id"])
        raw = d.get("turns")
        if not isinstance(raw, list) or len(raw) < 2:
            raise ValueError(f"{where}: {d['id']}: expected a list of at least two turns")
        turns = [parse_turn(t, f"{where}: {d['id']}.turns.{j}") for j, t in enumerate(raw)]
        out.append(Dialogue(d["id"], d["industry"], tuple(turns)))
    return out


def parse_turn(t: Any, where: str, timed: bool = False) -> HandTurn:
    """One ``{agent|customer: TEXT, emotion: ...}`` entry (and ``gap`` when ``timed``)."""
    allowed = {AGENT, CUSTOMER, "emotion", *(("gap",) if timed else ())}
    speakers = [s for s in (AGENT, CUSTOMER) if isinstance(t, dict) and s in t]
    if len(speakers) != 1 or set(t) - allowed:
        raise ValueError(
            f"{where}: expected one of agent/customer (+ {', '.join(sorted(allowed - set(SPEAKERS)))})"
        )
    text, emotion, gap = t[speakers[0]], t.get("emotion", "neutral"), t.get("gap")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: empty text")
    if emotion not in EMOTIONS:
        raise ValueError(f"{where}: emotion {emotion!r} not one of {EMOTIONS}")
    if gap is not None and not isinstance(gap, int | float):
        raise ValueError(f"{where}: gap {gap!r} is not a number of seconds")
    return HandTurn(speakers[0], text.strip(), emotion, None if gap is None else float(gap))


def load_dialogues(path: str | os.PathLike[str] | None = None) -> list[Dialogue]:
    path = Path(path) if path else handwritten_path()
    return parse_dialogues(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


@dataclass(frozen=True)
class _Job:
    index: int
    dialogue: Dialogue
    seed: int


def _render(job: _Job, corpus_dir: Path) -> dict[str, Any]:
    """One dialogue as a stereo call: test voices, natural gaps, no defects."""
    rng = np.random.default_rng(job.seed)
    voices = {AGENT: sample_voice(rng, SPLIT, AGENT), CUSTOMER: sample_voice(rng, SPLIT, CUSTOMER)}
    line = Line(
        snr_db=float(rng.uniform(15.0, 32.0)),
        packet_loss=0.0,
        codec="alaw" if rng.random() < 0.2 else "ulaw",
        mono=False,
    )
    turns = job.dialogue.turns
    audio = [synthesize(t.text, voices[t.speaker], t.emotion) for t in turns]
    speakers = [t.speaker for t in turns]
    tl = lay_out(
        speakers,
        ["turn"] * len(turns),
        [len(a) / ESPEAK_RATE for a in audio],
        rng,
        TimingRules(),
        False,
        False,
    )
    call_id = f"H{job.index + 1:04d}"
    rel, duration = mix_and_write(corpus_dir, call_id, audio, tl.starts, speakers, tl.duration, line, rng)
    record = CallRecord(
        id=call_id,
        audio=rel,
        sample_rate=SAMPLE_RATE,
        channels=dict(CHANNEL_OF),
        duration=duration,
        agent_id="handwritten",
        started_at=_START + timedelta(hours=job.index),
        scenario=job.dialogue.industry,
        turns=hand_turns(turns, tl.starts, tl.ends, {"dialogue": job.dialogue.id}, voices),
        truth=Truth(defects=[], events=[]),
        split=SPLIT,
        meta={
            "dialogue": job.dialogue.id,
            "snr_db": round(line.snr_db, 1),
            "codec": line.codec,
            "agent_voice": voices[AGENT].variant,
            "customer_voice": voices[CUSTOMER].variant,
        },
    )
    return record.to_json()


def render_handwritten(
    out: str | os.PathLike[str],
    seed: int = 0,
    workers: int | None = None,
    overwrite: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write the set as a corpus folder; return its corpus.json. Same seed, same bytes."""
    dialogues = load_dialogues(path)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(len(dialogues))]
    jobs = [_Job(i, d, s) for i, (d, s) in enumerate(zip(dialogues, seeds, strict=True))]
    header = {
        "name": f"callqa-handwritten-{SET_NAME}",
        "seed": seed,
        "handwritten_version": HANDWRITTEN_VERSION,
    }
    industries = len({d.industry for d in dialogues})
    info = write_rendered_set(out, _render, jobs, header, industries, workers, overwrite)
    log.info("hand-written set written to %s", out)
    return info


def hand_turns(
    turns: Sequence[HandTurn],
    starts: Sequence[float],
    ends: Sequence[float],
    meta: dict[str, str],
    voices: dict[str, Any],
) -> list[Turn]:
    """A hand-written call's turns: ``meta`` on each, with the voice of its speaker."""
    return timed_turns(turns, starts, ends, [{**meta, "voice": voices[t.speaker].variant} for t in turns])


def write_rendered_set(
    out: str | os.PathLike[str],
    render: Callable[..., dict[str, Any]],
    jobs: Sequence[Any],
    header: dict[str, Any],
    industries: int,
    workers: int | None = None,
    overwrite: bool = False,
    rubric: Path | None = None,
) -> dict[str, Any]:
    """Render ``jobs`` (``render(job, corpus_dir=...)`` -> a call record) into a corpus folder that
    appears only when complete, with its utterances, counts and fingerprint; returns corpus.json."""
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "audio").mkdir()
        calls = [
            CallRecord.model_validate(c)
            for c in _run(
                partial(render, corpus_dir=tmp), list(jobs), workers or os.cpu_count() or 1, "calls"
            )
        ]
        utterances = [u for c in calls for u in call_to_utterances(c)]
        write_jsonl(tmp / "calls.jsonl", (c.to_json() for c in calls))
        write_jsonl(tmp / "utterances.jsonl", (u.to_json() for u in utterances))
        if rubric is not None:
            (tmp / "rubric.yaml").write_text(rubric.read_text(encoding="utf-8"), encoding="utf-8")
        info = {
            **header,
            "counts": {
                "calls": len(calls),
                "calls_per_split": {SPLIT: len(calls)},
                "utterances": len(utterances),
                "industries": industries,
                "call_hours": round(sum(c.duration for c in calls) / 3600, 4),
                "utterance_hours_per_split": {SPLIT: round(sum(u.duration for u in utterances) / 3600, 4)},
            },
        }
        info["fingerprint"] = _fingerprint(tmp, ["calls.jsonl", "utterances.jsonl"])
        write_json(tmp / "corpus.json", info)
    return info
