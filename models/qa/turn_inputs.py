"""What the turn model reads of a heard call, as NumPy arrays: each turn's characters, a few numbers
about the turn (who, where in the call, how long, how fast, how it sounded), its place counted from
either end of the call, and the call's feature row (timeline and rule evidence, standardised).

Torch-free, so training, the ONNX parity check and the scoring server build the same arrays from the
same code. The settings (vocabulary, standardisation) travel inside the checkpoint and the ONNX file.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from callqa.data.constants import EMOTIONS
from callqa.qa.timeline import CallView, Said

PAD, UNKNOWN = 0, 1
#: Turns are placed by their index counted from the start and from the end, clipped here: the first
#: and last few turns are where greetings and closings live, and a clipped index means a 60-minute
#: call looks like a 3-minute one everywhere else (no position the model never saw in training).
EDGE = 8
ROLES = ("agent", "customer")
#: The graph's inputs, in the order the model's forward takes them.
INPUT_NAMES = ("chars", "turn_features", "edges", "turns", "call")
TURN_FEATURES = (
    *(f"role.{r}" for r in ROLES),
    "position",
    "log_duration",
    "chars_per_second",
    "gap_before",
    "overlaps_previous",
    "has_emotion",
    *(f"emotion.{e}" for e in EMOTIONS),
)


@dataclass
class TurnEncoding:
    """The settings that turn a heard call into the model's arrays."""

    #: Characters by id; ids 0 and 1 are padding and "not in the vocabulary".
    vocabulary: list[str]
    #: Feature-row names, in the order of the call vector, with their train mean and scale.
    features: list[str] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    #: A turn's characters beyond this are cut (its start says most of what the rubric asks).
    max_chars: int = 64

    def __post_init__(self) -> None:
        self._ids = {c: k for k, c in enumerate(self.vocabulary) if k > UNKNOWN}

    def to_dict(self) -> dict:
        return asdict(self)

    def chars(self, text: str) -> list[int]:
        return [self._ids.get(c, UNKNOWN) for c in text if not c.isspace()][: self.max_chars]

    def call_vector(self, row: Mapping[str, float]) -> np.ndarray:
        x = np.array([float(row.get(n, 0.0)) for n in self.features], dtype=np.float64)
        x = np.where(np.isfinite(x), x, 0.0)
        return ((x - np.array(self.mean)) / np.array(self.scale)).astype(np.float32)


@dataclass
class CallArrays:
    """One call: chars (turns, max chars), turn_features (turns, F), edges (turns, 2), call (C,)."""

    chars: np.ndarray
    turn_features: np.ndarray
    edges: np.ndarray
    call: np.ndarray


def _turn_numbers(turn: Said, previous: Said | None, duration: float) -> list[float]:
    mid = (turn.start + turn.end) / 2
    gap = 0.0 if previous is None else turn.start - previous.end
    probs = [turn.prob(e) for e in EMOTIONS]
    known = all(p is not None for p in probs)
    chars = sum(1 for c in turn.text if not c.isspace())
    return [
        *(float(turn.speaker == r) for r in ROLES),
        mid / max(duration, 1e-6),
        math.log1p(max(turn.duration, 0.0)),
        min(chars / max(turn.duration, 0.3), 15.0) / 5.0,
        min(max(gap, 0.0), 10.0) / 5.0,
        float(gap < 0.0),
        float(known),
        *((float(p) for p in probs) if known else (0.0 for _ in EMOTIONS)),
    ]


def edge_index(n: int) -> np.ndarray:
    """(n, 2): each of ``n`` turns' index from the start and from the end of the call, clipped."""
    idx = np.arange(n)
    return np.stack([np.minimum(idx, EDGE - 1), np.minimum(n - 1 - idx, EDGE - 1)], axis=1).astype(np.int64)


def encode_call(view: CallView, row: Mapping[str, float], enc: TurnEncoding) -> CallArrays:
    """A call's arrays. A call with no turns gets one empty turn, so every call has something to
    attend to (the scorer does not judge such calls; this only keeps the shapes valid)."""
    turns = view.turns or [Said(None, 0.0, 0.0, "")]
    n = len(turns)
    chars = np.zeros((n, max(1, enc.max_chars)), dtype=np.int64)
    numbers = np.zeros((n, len(TURN_FEATURES)), dtype=np.float32)
    for k, t in enumerate(turns):
        ids = enc.chars(t.text)
        chars[k, : len(ids)] = ids
        numbers[k] = _turn_numbers(t, turns[k - 1] if k else None, view.duration)
    width = max(1, int((chars != PAD).sum(1).max()))
    return CallArrays(chars[:, :width], numbers, edge_index(n), enc.call_vector(row))


def batch_arrays(calls: Sequence[CallArrays]) -> dict[str, np.ndarray]:
    """Pad calls to one batch: the graph's inputs by name (``turns`` holds each call's turn count)."""
    t = max(len(c.chars) for c in calls)
    w = max(c.chars.shape[1] for c in calls)
    out = {
        "chars": np.zeros((len(calls), t, w), dtype=np.int64),
        "turn_features": np.zeros((len(calls), t, len(TURN_FEATURES)), dtype=np.float32),
        "edges": np.zeros((len(calls), t, 2), dtype=np.int64),
        "turns": np.array([len(c.chars) for c in calls], dtype=np.int64),
        "call": np.stack([c.call for c in calls]).astype(np.float32),
    }
    for k, c in enumerate(calls):
        n, m = c.chars.shape
        out["chars"][k, :n, :m] = c.chars
        out["turn_features"][k, :n] = c.turn_features
        out["edges"][k, :n] = c.edges
    return out


def build_vocabulary(texts: Iterable[str], min_count: int = 2, max_size: int = 6000) -> list[str]:
    """The characters heard at least ``min_count`` times, most frequent first: a character the
    recogniser wrote once is more likely its error than a word the model should learn."""
    counts = Counter(c for text in texts for c in text if not c.isspace())
    kept = [c for c, n in counts.most_common(max_size) if n >= min_count]
    return ["<pad>", "<unk>", *kept]


def standardisation(rows: Sequence[Mapping[str, float]]) -> tuple[list[str], list[float], list[float]]:
    names = sorted({n for r in rows for n in r})
    x = np.array([[float(r.get(n, 0.0)) for n in names] for r in rows], dtype=np.float64)
    x = np.where(np.isfinite(x), x, 0.0)
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    return names, [round(float(v), 6) for v in mean], [round(float(v), 6) for v in scale]
