"""The result contract of judging one call: rule events with their evidence, item scores, total, band.

``callqa score`` writes one :class:`CallScore` per line and the scoring server will return the same shape.
A :class:`CallScore` holds the :class:`~callqa.data.results.CallResult` it was judged from, so one record
says what was heard and what was concluded from it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from callqa.data.results import CallResult, ModelInfo
from callqa.data.schema import Record, Seconds, Speaker

SCORE_VERSION: Literal["1"] = "1"

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class RuleEvent(Record):
    """One finding of one rule: what the inspector would cite in a comment, with where to listen."""

    item: str
    rule: str
    start: Seconds
    end: Seconds
    speaker: Speaker | None = None
    channel: Annotated[int, Field(ge=0)] | None = None
    #: What was said (or not said) that made the finding: masked like the transcript.
    evidence: str
    confidence: Probability
    detail: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> RuleEvent:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) must not be before start ({self.start})")
        return self


class ItemScore(Record):
    """One rubric item: was there a defect, how sure, how many points it costs, and why."""

    item: str
    defect: bool
    probability: Probability
    points_lost: Annotated[float, Field(ge=0.0)]
    #: The item is fatal and defective: the call scores zero.
    fatal: bool = False
    #: P(defect) times the points at stake: what the item costs on average over the model's doubt.
    expected_points_lost: Annotated[float, Field(ge=0.0)] = 0.0
    #: What decided it: ``rules`` (a detector alone) or the name of the model.
    source: str = "rules"
    #: Readable reasons: the events and the features that weighed most.
    explanation: list[str] = Field(default_factory=list)
    #: The item could not be judged from this call (no detector, or no agent channel in a mono mix).
    judged: bool = True


class RubricRef(Record):
    name: str
    version: str


class CallScore(Record):
    """Everything callqa concludes about one call."""

    version: Literal["1"] = SCORE_VERSION
    id: str
    rubric: RubricRef
    items: list[ItemScore]
    events: list[RuleEvent] = Field(default_factory=list)
    #: ``None`` when the call was not judged (see ``judged``).
    total: Annotated[float, Field(ge=0.0, le=100.0)] | None
    #: The total's expectation under the item probabilities (a fatal item's probability scales the whole
    #: call down): it ranks calls by risk and follows an average inspector more closely than the total
    #: of hard decisions, which is what the sheet, the band and the fatal flags report.
    expected_total: Annotated[float, Field(ge=0.0, le=100.0)] | None = None
    band: str | None
    fatal: list[str] = Field(default_factory=list)
    #: False when nothing could be judged (no speech heard, or none on the agent's channel): such a
    #: call goes to a person rather than into the averages with a made-up score; ``warnings`` says why.
    judged: bool = True
    #: What was heard: turns, emotions, silences and overlaps (absent when scored from a transcript).
    call: CallResult | None = None
    models: dict[str, ModelInfo] = Field(default_factory=dict)
    masked: bool = True
    processing_seconds: Annotated[float, Field(ge=0.0)] = 0.0
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _judged_has_total(self) -> CallScore:
        if self.judged and (self.total is None or self.band is None):
            raise ValueError("a judged call needs a total and a band")
        if not self.judged and (self.total is not None or self.band is not None):
            raise ValueError("a call that was not judged has no total or band")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
