"""Stand-ins for the pipeline's models: a recording ASR spy and a speech-emotion model with the
OnnxSer contract (labels, sample_rate, threshold, classify)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from callqa.data.constants import EMOTIONS


@dataclass
class Heard:
    text: str


@dataclass
class SpyAsr:
    """Says one character per 0.25 s of audio and remembers every batch it was given."""

    sample_rate: int = 8000
    batches: list[list[int]] = field(default_factory=list)

    def transcribe(self, waves: Sequence[np.ndarray], beam: int = 1, hotwords=None, lm=None) -> list[Heard]:
        self.batches.append([len(w) for w in waves])
        return [Heard("好" * max(1, round(len(w) / self.sample_rate * 4))) for w in waves]

    @property
    def lengths(self) -> list[int]:
        return [n for b in self.batches for n in b]


@dataclass
class FakeSer:
    """Confident "angry" on the louder half of a speaker's segments, unsure on the rest."""

    labels: tuple[str, ...] = EMOTIONS
    sample_rate: int = 8000
    threshold: float = 0.5
    calls: list[int] = field(default_factory=list)

    def classify(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        self.calls.append(len(waves))
        level = np.array([float(np.sqrt(np.mean(w**2))) for w in waves])
        probs = np.full((len(waves), len(self.labels)), 0.3 / (len(self.labels) - 1))
        loud = level >= np.median(level)
        probs[loud] = 0.1 / (len(self.labels) - 1)
        probs[loud, self.labels.index("angry")] = 0.9
        probs[~loud, self.labels.index("neutral")] = 0.2
        return probs / probs.sum(1, keepdims=True)
