"""One view of a call for the rules, whether it comes from the pipeline or from a labelled transcript.

Rules must give the same answer on ground-truth turns and on what the pipeline heard, so that the flip
analysis can compare the two; both are turned into this view first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callqa.data.constants import AGENT, CUSTOMER
from callqa.data.results import CallResult
from callqa.data.schema import CallRecord


@dataclass(frozen=True)
class Said:
    """One turn: who, when, what, and how it sounded (``probs``: emotion probabilities when known)."""

    speaker: str | None
    start: float
    end: float
    text: str
    emotion: str | None = None
    probs: dict[str, float] | None = None
    channel: int | None = None
    #: Rubric phrases spotted in the ASR posteriors (phrase -> score <= 0), when spotting ran.
    spotted: dict[str, float] | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def prob(self, label: str) -> float | None:
        """How likely the turn sounded ``label``: the model's probability, or 1/0 from a bare label."""
        if self.probs is not None:
            return float(self.probs.get(label, 0.0))
        if self.emotion is None:
            return None
        return 1.0 if self.emotion == label else 0.0


@dataclass
class CallView:
    id: str
    turns: list[Said]
    duration: float
    #: Speakers are known (stereo, or labelled): rules about "the agent" can be judged.
    roles_known: bool = True
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.turns = sorted(self.turns, key=lambda t: (t.start, t.end))

    def of(self, speaker: str) -> list[Said]:
        return [t for t in self.turns if t.speaker == speaker]

    @property
    def agent(self) -> list[Said]:
        return self.of(AGENT)

    @property
    def customer(self) -> list[Said]:
        return self.of(CUSTOMER)

    @property
    def has_emotion(self) -> bool:
        return any(t.emotion is not None or t.probs is not None for t in self.turns)

    def gaps(self) -> list[tuple[float, float]]:
        """Stretches where nobody speaks, between the first turn's start and the last turn's end."""
        out: list[tuple[float, float]] = []
        reach = None
        for t in self.turns:
            if reach is not None and t.start > reach:
                out.append((reach, t.start))
            reach = t.end if reach is None else max(reach, t.end)
        return out

    @classmethod
    def from_result(cls, result: CallResult) -> CallView:
        turns = [
            Said(t.speaker, t.start, t.end, t.text, t.emotion, t.emotion_probs, t.channel, t.spotted)
            for t in result.turns
        ]
        return cls(result.id, turns, result.duration, roles_known=any(c.speaker for c in result.channels))

    @classmethod
    def from_record(cls, record: CallRecord) -> CallView:
        turns = [
            Said(t.speaker, t.start, t.end, t.text, t.emotion, None, record.channel_of(t.speaker))
            for t in record.turns
        ]
        return cls(record.id, turns, record.duration, roles_known=True)
