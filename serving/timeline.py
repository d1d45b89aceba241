"""From transcribed segments to the call's timeline: turns, and the silences and overlaps between them.

A turn is one speech region of one channel (the pieces it was cut into for ASR joined again), so its
times are the voice-activity detector's, not the cap's. Regions in which ASR heard nothing are dropped:
noise that looked like speech to the detector must not become a turn, nor split a silence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from callqa.data.constants import UNCERTAIN
from callqa.data.pii import mask_pii
from callqa.data.results import CallResult, ChannelInfo, Interval, TurnResult
from callqa.serving.segments import Segment


def build_turns(
    segments: Sequence[Segment],
    texts: Sequence[str],
    channels: Sequence[ChannelInfo],
    probs: np.ndarray | None = None,
    labels: Sequence[str] = (),
    threshold: float = 0.0,
    raw: bool = False,
    spotted: Sequence[dict[str, float]] | None = None,
) -> list[TurnResult]:
    """Turns in time order. ``probs`` (segments × labels) are averaged over a turn's pieces, weighted by
    their length; the turn's emotion is the likeliest label, or "uncertain" below ``threshold``. A
    turn's spotted phrases (per segment, when keyword spotting ran) keep each phrase's best piece."""
    pieces: dict[int, list[int]] = defaultdict(list)
    for k, seg in enumerate(segments):
        pieces[seg.region].append(k)
    turns = []
    for ks in pieces.values():
        text = "".join(texts[k] for k in ks).strip()
        if not text:
            continue
        first, last = segments[ks[0]], segments[ks[-1]]
        duration = last.end - first.start
        emotion, emotion_probs = None, None
        if probs is not None:
            weights = np.array([segments[k].duration for k in ks])
            p = (probs[ks] * weights[:, None]).sum(0) / weights.sum()
            best = int(np.argmax(p))
            emotion = labels[best] if p[best] >= threshold else UNCERTAIN
            emotion_probs = {label: round(float(v), 4) for label, v in zip(labels, p, strict=True)}
        heard: dict[str, float] | None = None
        if spotted is not None:
            heard = {}
            for k in ks:
                for phrase, score in spotted[k].items():
                    heard[phrase] = max(score, heard.get(phrase, score))
        turns.append(
            TurnResult(
                channel=first.channel,
                speaker=channels[first.channel].speaker,
                start=round(first.start, 3),
                end=round(last.end, 3),
                text=text if raw else mask_pii(text),
                emotion=emotion,
                emotion_probs=emotion_probs,
                chars_per_minute=round(len(text.replace(" ", "")) * 60.0 / duration, 1),
                spotted=heard,
            )
        )
    return sorted(turns, key=lambda t: (t.start, t.channel))


def silences(turns: Sequence[TurnResult], min_seconds: float) -> list[Interval]:
    """Gaps of at least ``min_seconds`` in which no channel speaks, between the first and last turn."""
    out, reach = [], None
    for t in sorted(turns, key=lambda t: t.start):
        if reach is not None and t.start - reach >= min_seconds:
            out.append(_interval(reach, t.start))
        reach = t.end if reach is None else max(reach, t.end)
    return out


def overlaps(turns: Sequence[TurnResult], min_seconds: float) -> list[Interval]:
    """Stretches of at least ``min_seconds`` in which two channels speak at once."""
    by_channel: dict[int, list[TurnResult]] = defaultdict(list)
    for t in turns:
        by_channel[t.channel].append(t)
    chans = sorted(by_channel)
    out = []
    for i, a in enumerate(chans):
        for b in chans[i + 1 :]:
            x, y = by_channel[a], by_channel[b]
            j = k = 0
            while j < len(x) and k < len(y):
                s, e = max(x[j].start, y[k].start), min(x[j].end, y[k].end)
                if e - s >= min_seconds:
                    out.append(_interval(s, e))
                if x[j].end < y[k].end:
                    j += 1
                else:
                    k += 1
    return sorted(out, key=lambda iv: iv.start)


def _interval(start: float, end: float) -> Interval:
    return Interval(start=round(start, 3), end=round(end, 3), duration=round(end - start, 3))


def turn_table(result: CallResult) -> list[str]:
    """The call as lines a person reads: a header, then time, speaker, text and emotion per turn."""
    head = (
        f"== {result.audio or result.id}: {result.duration:.1f} s, {len(result.turns)} turns, "
        f"{len(result.silences)} silences ≥ {result.settings.get('min_silence', 0)} s "
        f"(longest {max((s.duration for s in result.silences), default=0.0):.1f} s), "
        f"{len(result.overlaps)} overlaps"
    )
    lines = [head]
    for t in result.turns:
        who = t.speaker or f"ch{t.channel}"
        mood = f"  [{t.emotion} {max(t.emotion_probs.values()):.2f}]" if t.emotion and t.emotion_probs else ""
        lines.append(f"{_clock(t.start)}–{_clock(t.end)}  {who:<8}  {t.text}{mood}")
    return lines


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60.0)
    return f"{int(m):02d}:{s:04.1f}"
