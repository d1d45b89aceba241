"""Lay synthesised turns on a call timeline: natural gaps, announced holds, dead air and interruptions.

Timing defects are placed here because they depend on how long each sentence really lasts: an
interruption needs a customer turn long enough to talk over, and the overlap must exceed the rubric's
threshold by a margin so that the ground truth is unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from callqa.data.constants import AGENT, CUSTOMER
from callqa.data.schema import DefectEvent


@dataclass(frozen=True)
class TimingRules:
    """Thresholds from the rubric (item params) that decide what counts as a defect."""

    max_silence: float = 5.0
    min_overlap: float = 1.0


@dataclass
class Timeline:
    starts: list[float]
    ends: list[float]
    duration: float
    events: list[DefectEvent] = field(default_factory=list)
    holds: list[tuple[float, float]] = field(default_factory=list)


def _natural_gap(rng: np.random.Generator, rules: TimingRules) -> float:
    """A turn-taking pause: usually well under a second, never near the dead-air threshold."""
    return float(np.clip(rng.lognormal(np.log(0.5), 0.5), 0.15, min(2.0, rules.max_silence * 0.4)))


def lay_out(
    speakers: list[str],
    kinds: list[str],
    durations: list[float],
    rng: np.random.Generator,
    rules: TimingRules,
    interruption: bool,
    silence: bool,
) -> Timeline:
    """Place turns in order. ``interruption``/``silence`` ask for the defect; it is placed where it can be
    real, and left out (with no event) when the call has no such place."""
    n = len(durations)
    after_customer = [i for i in range(1, n) if speakers[i] == AGENT and speakers[i - 1] == CUSTOMER]
    interrupt_at = -1
    if interruption:
        long_enough = [
            i
            for i in after_customer
            if durations[i - 1] >= rules.min_overlap + 1.0 and durations[i] >= rules.min_overlap + 0.5
        ]
        if long_enough:
            interrupt_at = int(rng.choice(long_enough))
    silent_at = -1
    if silence:
        spots = [i for i in after_customer if i != interrupt_at and kinds[i] != "hold_return"]
        if spots:
            silent_at = int(rng.choice(spots))

    starts: list[float] = []
    ends: list[float] = []
    events: list[DefectEvent] = []
    holds: list[tuple[float, float]] = []
    t = float(rng.uniform(0.3, 1.0))
    for i, d in enumerate(durations):
        last_end = max(ends, default=0.0)
        start = t
        if i == interrupt_at:
            longest = min(rules.min_overlap + 1.5, durations[i - 1] - 0.5, d - 0.2)
            overlap = float(rng.uniform(rules.min_overlap + 0.3, max(longest, rules.min_overlap + 0.3)))
            start = ends[i - 1] - overlap
            events.append(DefectEvent(item="interruption", start=start, end=ends[i - 1], speaker=AGENT))
        elif i == silent_at:
            start = last_end + float(rng.uniform(rules.max_silence + 1.0, rules.max_silence + 7.0))
            events.append(DefectEvent(item="silence", start=last_end, end=start, speaker=AGENT))
        elif kinds[i] == "hold_return":
            start = last_end + float(rng.uniform(rules.max_silence + 0.5, rules.max_silence + 9.0))
            holds.append((last_end, start))
        elif i in after_customer and rng.random() < 0.08:
            # a natural, short overlap: the agent comes in just before the customer finishes
            start = max(starts[i - 1] + 0.2, ends[i - 1] - float(rng.uniform(0.1, rules.min_overlap * 0.5)))
        starts.append(start)
        ends.append(start + d)
        t = max(ends) + _natural_gap(rng, rules)
    duration = max(ends) + float(rng.uniform(0.3, 1.0))
    return Timeline(starts, ends, duration, events, holds)
