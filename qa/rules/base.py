"""What every detector shares: options read from the rubric, phrase lists, and the verdict it returns.

A rubric item opts into a detector with a ``rule:`` block naming it, plus the detector's options (phrase
lists, windows, probabilities). Thresholds that the corpus generator also reads (silence length, overlap,
speech-rate range) stay in the item's ``params`` and reach the detector from there, so that one number
means the same thing to the generator, the rules and the inspectors' sheet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callqa.data.rubric import RubricItem
from callqa.data.schema import SchemaError, _describe
from callqa.data.scores import RuleEvent
from callqa.qa.match import MIN_SPOTTED, MIN_SPOTTED_SHORT, PhraseMatcher
from callqa.qa.timeline import CallView, Said


class Options(BaseModel):
    """A detector's settings; unknown keys are errors, so a typo in a centre's rubric is caught at load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Phrases(BaseModel):
    """A phrase list as a rubric writes it: phrases matched on pinyin with edit distance, plus regexes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phrases: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    min_similarity: float = Field(0.8, gt=0.0, le=1.0)
    fuzzy_pinyin: bool = True
    #: Keyword-spotting limits (qa.match): how far below the ASR's best path a phrase may score.
    min_spotted: float = Field(MIN_SPOTTED, lt=0.0)
    min_spotted_short: float = Field(MIN_SPOTTED_SHORT, lt=0.0)

    def matcher(self) -> PhraseMatcher:
        return PhraseMatcher(
            self.phrases,
            self.patterns,
            self.min_similarity,
            self.fuzzy_pinyin,
            self.min_spotted,
            self.min_spotted_short,
        )


@dataclass
class Verdict:
    """What a detector concluded about its item on one call.

    ``features`` are the numbers behind the decision (best phrase similarity, longest gap, ...): the QA
    model learns from them where a fixed threshold would be too blunt.
    """

    item: str
    defect: bool
    confidence: float
    events: list[RuleEvent] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    judged: bool = True
    reason: str = ""
    #: The finding stands whatever the QA model says (as a fatal item's does): evidence an inspector
    #: deducts for every time, which a model trained on calls without it would learn to discount.
    stands: bool = False


class Detector:
    """Base class: subclasses set ``name`` and ``Settings`` and implement :meth:`judge`."""

    name: ClassVar[str]
    Settings: ClassVar[type[Options]]

    def __init__(self, item: RubricItem, source: str = "rubric") -> None:
        self.item = item
        spec = {k: v for k, v in (item.rule or {}).items() if k != "detector"}
        known = self.Settings.model_fields
        from_params = {k: v for k, v in item.params.items() if k in known and k not in spec}
        try:
            self.opts = self.Settings.model_validate({**from_params, **spec})
        except ValidationError as exc:
            raise SchemaError(f"{source}: item {item.id}: rule {self.name}: {_describe(exc)}") from None
        self.setup()

    def setup(self) -> None:
        """Build matchers once per rubric, not once per call."""

    def judge(self, view: CallView) -> Verdict:
        raise NotImplementedError

    def event(
        self,
        turns: list[Said],
        confidence: float,
        detail: str,
        evidence: str | None = None,
        span: tuple[float, float] | None = None,
    ) -> RuleEvent:
        """An event over ``turns`` (or an explicit time span), citing their text unless told otherwise."""
        start, end = span if span is not None else (turns[0].start, turns[-1].end)
        first = turns[0] if turns else None
        return RuleEvent(
            item=self.item.id,
            rule=self.name,
            start=round(start, 3),
            end=round(max(start, end), 3),
            speaker=first.speaker if first else None,
            channel=first.channel if first else None,
            evidence=evidence if evidence is not None else " / ".join(t.text for t in turns),
            confidence=round(float(min(1.0, max(0.0, confidence))), 3),
            detail=detail,
        )

    def verdict(
        self,
        defect: bool,
        confidence: float,
        events: list[RuleEvent] | None = None,
        reason: str = "",
        **features: float,
    ) -> Verdict:
        return Verdict(
            self.item.id,
            defect,
            round(float(min(1.0, max(0.0, confidence))), 3),
            events or [],
            {k: float(v) for k, v in features.items()},
            True,
            reason,
        )

    def not_judged(self, reason: str) -> Verdict:
        return Verdict(self.item.id, False, 0.0, [], {}, False, reason)


def ramp(value: float, threshold: float, scale: float) -> float:
    """Confidence that grows from 0.5 at the threshold to 1 at ``scale`` beyond it: a finding just over
    the line is a coin toss for an inspector, one far over it is not."""
    return min(1.0, max(0.0, 0.5 + 0.5 * (value - threshold) / max(scale, 1e-9)))


DETECTORS: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    DETECTORS[cls.name] = cls
    return cls


def unknown_rule(item: RubricItem, source: str) -> SchemaError:
    detector = (item.rule or {}).get("detector")
    return SchemaError(
        f"{source}: item {item.id}: unknown rule detector {detector!r}; known: {sorted(DETECTORS)}"
    )
