"""The data contracts: call records, utterance manifests, and how they are read and written.

Records are validated on load. A bad line fails with the file, the line number and the field path, so a
QA team that hand-edits an export can find its mistake without reading a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callqa.data.constants import CHANNEL_OF, EMOTIONS, INSPECTION_KINDS, SPEAKERS, SPLITS
from callqa.data.files import write_jsonl

Speaker = Literal[SPEAKERS]  # type: ignore[valid-type]
Emotion = Literal[EMOTIONS]  # type: ignore[valid-type]
Split = Literal[SPLITS]  # type: ignore[valid-type]
InspectionKind = Literal[INSPECTION_KINDS]  # type: ignore[valid-type]
Seconds = Annotated[float, Field(ge=0.0)]


class Record(BaseModel):
    """Base for every contract: unknown fields are errors, because a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Turn(Record):
    speaker: Speaker
    start: Seconds
    end: Seconds
    text: str
    emotion: Emotion | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> Turn:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class Inspection(Record):
    """One inspector's scoring sheet for one call: points lost per rubric item, fatal items, total."""

    inspector_id: str
    at: datetime
    items: dict[str, Annotated[float, Field(ge=0.0)]] = Field(default_factory=dict)
    fatal: list[str] = Field(default_factory=list)
    total: Annotated[float, Field(ge=0.0, le=100.0)]
    comment: str = ""
    kind: InspectionKind = "sample"


class Survey(Record):
    csat: Annotated[int, Field(ge=1, le=5)] | None = None


class DefectEvent(Record):
    """Where a defect happens on the timeline (synthetic ground truth), so tests can find it in the audio."""

    item: str
    start: Seconds
    end: Seconds
    speaker: Speaker | None = None


class Truth(Record):
    """Ground truth that only a synthetic corpus has: the defects really put into the call."""

    defects: list[str] = Field(default_factory=list)
    events: list[DefectEvent] = Field(default_factory=list)


class CallRecord(Record):
    id: str
    audio: str
    sample_rate: Annotated[int, Field(gt=0)]
    channels: dict[Speaker, Annotated[int, Field(ge=0)]] | Literal["mono"]
    duration: Annotated[float, Field(gt=0.0)]
    agent_id: str
    team: str | None = None
    started_at: datetime
    scenario: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    inspections: list[Inspection] = Field(default_factory=list)
    survey: Survey | None = None
    truth: Truth | None = None
    split: Split | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> CallRecord:
        if isinstance(self.channels, dict) and set(self.channels) != set(SPEAKERS):
            raise ValueError(f"channels must map both {SPEAKERS}, got {sorted(self.channels)}")
        for i, turn in enumerate(self.turns):
            if turn.end > self.duration + 0.05:
                raise ValueError(f"turns.{i} ends at {turn.end:.2f}s, after the call ({self.duration:.2f}s)")
        return self

    def channel_of(self, speaker: str) -> int | None:
        """The audio channel a speaker is on, or None for a mono mix."""
        return None if self.channels == "mono" else self.channels[speaker]


class Utterance(Record):
    """One stretch of one channel: the unit ASR and SER train on."""

    id: str
    audio: str
    offset: Seconds = 0.0
    duration: Annotated[float, Field(gt=0.0)]
    channel: Annotated[int, Field(ge=0)] | None = None
    speaker: Speaker | None = None
    text: str = ""
    emotion: Emotion | None = None
    split: Split | None = None
    call_id: str | None = None
    voice: str | None = None
    snr_db: float | None = None


DEFAULT_CHANNELS: dict[str, int] = dict(CHANNEL_OF)

R = TypeVar("R", bound=Record)


class SchemaError(ValueError):
    """A record that does not fit its contract; the message names the file, line and field."""


def _describe(error: ValidationError) -> str:
    parts = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(record)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def iter_jsonl(path: str | os.PathLike[str], model: type[R]) -> Iterator[R]:
    """Yield validated records from a JSONL file, failing on the first bad line with its location."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SchemaError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            try:
                yield model.model_validate(obj)
            except ValidationError as exc:
                raise SchemaError(f"{path}:{lineno}: {model.__name__} {_describe(exc)}") from None


def read_jsonl(path: str | os.PathLike[str], model: type[R]) -> list[R]:
    return list(iter_jsonl(path, model))


def write_records(path: str | os.PathLike[str], records: Iterable[Record]) -> int:
    """Write records as JSONL atomically (None fields dropped, keys sorted for stable bytes)."""
    return write_jsonl(path, (r.to_json() for r in records))


def read_calls(path: str | os.PathLike[str]) -> list[CallRecord]:
    return read_jsonl(path, CallRecord)


def read_utterances(path: str | os.PathLike[str]) -> list[Utterance]:
    return read_jsonl(path, Utterance)


def resolve_audio(audio: str, root: str | os.PathLike[str]) -> Path:
    """Audio paths in a manifest are relative to the manifest's folder unless absolute."""
    p = Path(audio)
    return p if p.is_absolute() else Path(root) / p
