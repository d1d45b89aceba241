"""The result contract of listening to one call: who spoke when, what they said and how.

``callqa transcribe --format jsonl`` writes one :class:`CallResult` per line, and the scoring server
returns the same shape, so a consumer written against one reads the other. The contract is versioned:
a change that renames or removes a field bumps :data:`RESULT_VERSION`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from callqa.data.constants import EMOTIONS, UNCERTAIN
from callqa.data.schema import Record, Seconds, Speaker

RESULT_VERSION: Literal["1"] = "1"

#: A turn's emotion: one of the model's labels, or "uncertain" below the model's confidence threshold.
TurnEmotion = Literal[(*EMOTIONS, UNCERTAIN)]  # type: ignore[valid-type]


class Interval(Record):
    """A stretch of the call timeline (seconds from the start of the recording)."""

    start: Seconds
    end: Seconds
    duration: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) must not be before start ({self.start})")
        return self


class ChannelInfo(Record):
    """One audio channel and who speaks on it (None: a mono mix, speaker unknown)."""

    index: Annotated[int, Field(ge=0)]
    speaker: Speaker | None = None


class TurnResult(Record):
    """One stretch of speech on one channel, as the pipeline heard it."""

    channel: Annotated[int, Field(ge=0)]
    speaker: Speaker | None = None
    start: Seconds
    end: Seconds
    text: str
    emotion: TurnEmotion | None = None
    #: Calibrated probability per emotion label (absent when emotion was not asked for).
    emotion_probs: dict[str, float] | None = None
    #: Spoken characters per minute of the turn: the speech-rate item reads it.
    chars_per_minute: Annotated[float, Field(ge=0.0)]
    #: Keyword spotting of the rubric's phrases on the ASR posteriors: phrase -> mean log-probability
    #: per character given up against the best path (0: on it; the nearer 0, the likelier it was said).
    #: Only phrases near enough to count are listed; None when spotting did not run.
    spotted: dict[str, Annotated[float, Field(le=0.0)]] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TurnResult:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class ModelInfo(Record):
    """Which model produced a part of the result, so a result can be traced and reproduced."""

    kind: str
    path: str | None = None
    version: str | None = None
    quantization: str | None = None


class CallResult(Record):
    """Everything the pipeline says about one call."""

    version: Literal["1"] = RESULT_VERSION
    id: str
    audio: str | None = None
    duration: Annotated[float, Field(ge=0.0)]
    sample_rate: Annotated[int, Field(gt=0)]
    channels: list[ChannelInfo]
    turns: list[TurnResult] = Field(default_factory=list)
    #: Stretches where no channel speaks, between the first and the last turn.
    silences: list[Interval] = Field(default_factory=list)
    #: Stretches where two channels speak at once.
    overlaps: list[Interval] = Field(default_factory=list)
    models: dict[str, ModelInfo] = Field(default_factory=dict)
    #: Whether phone, ID and card numbers in the texts are masked.
    masked: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    processing_seconds: Annotated[float, Field(ge=0.0)] = 0.0
    #: Where the time went: seconds per stage (vad, asr, ser).
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    #: What the consumer should know about how far to trust parts of this result.
    warnings: list[str] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Keep nulls: a mono turn's ``"speaker": null`` says "unknown", which a missing key does not."""
        return self.model_dump(mode="json")
