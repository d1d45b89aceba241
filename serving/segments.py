"""Cutting speech regions into segments no longer than the ASR's cap.

The Conformer's attention grows with the square of its input, so nothing longer than ``max_seconds``
may reach it. A region over the cap is cut at its deepest internal pause (the frame whose voice-activity
score is lowest among those below the detector's ``off`` threshold: a pause the detector bridged), and
the pieces again until every piece fits. A region with no pause at all is cut as a last resort at its
quietest frame in the last third before the cap. Pieces of one region keep its ``region`` number, so
the turn timeline can put them back together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from callqa.serving.vad import Activity


@dataclass(frozen=True)
class Segment:
    channel: int
    start: float
    end: float
    #: Index of the speech region it was cut from, unique within the call.
    region: int

    @property
    def duration(self) -> float:
        return self.end - self.start


def cut_segments(activity: Activity, max_seconds: float, min_piece: float = 1.0) -> list[Segment]:
    """All channels' regions as segments of at most ``max_seconds``, in time order per channel."""
    if max_seconds <= 2 * min_piece:
        raise ValueError(f"max_seconds ({max_seconds}) must exceed twice min_piece ({min_piece})")
    out: list[Segment] = []
    region = 0
    for ch, regions in enumerate(activity.regions):
        score = activity.scores[ch]
        for start, end in regions:
            for s, e in _split(start, end, score, activity.hop, activity.rules.off, max_seconds, min_piece):
                out.append(Segment(ch, s, e, region))
            region += 1
    return out


def _split(
    start: float, end: float, score: np.ndarray, hop: float, off: float, cap: float, min_piece: float
) -> list[tuple[float, float]]:
    pending, done = [(start, end)], []
    while pending:
        s, e = pending.pop()
        if e - s <= cap:
            done.append((s, e))
            continue
        cut = _cut_point(s, e, score, hop, off, cap, min_piece)
        pending += [(cut, e), (s, cut)]
    return sorted(done)


def _cut_point(
    s: float, e: float, score: np.ndarray, hop: float, off: float, cap: float, min_piece: float
) -> float:
    lo, hi = round((s + min_piece) / hop), round((e - min_piece) / hop)
    inner = score[lo:hi]
    pauses = np.flatnonzero(inner < off)
    if len(pauses):
        return (lo + int(pauses[np.argmin(inner[pauses])]) + 0.5) * hop
    # No pause: the quietest frame in the last third before the cap, so the first piece fits.
    a, b = round((s + cap * 2 / 3) / hop), int((s + cap) / hop) - 1
    return (a + int(np.argmin(score[a:b])) + 0.5) * hop if b > a else s + cap / 2
