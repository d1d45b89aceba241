"""Detectors of when people speak: talking over the customer, dead air, speech rate."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from callqa.data.constants import AGENT, CUSTOMER
from callqa.qa.rules.base import Detector, Options, Phrases, Verdict, ramp, register
from callqa.qa.timeline import CallView

_HAN = re.compile(r"[\u4e00-\u9fff]")


class OverlapSettings(Options):
    min_overlap_seconds: float = Field(1.0, gt=0)


@register
class Overlap(Detector):
    """The agent starts while the customer is still speaking and they talk together for longer than the
    threshold. The customer talking over the agent is not the agent's fault and is not counted."""

    name = "overlap"
    Settings = OverlapSettings

    def judge(self, view: CallView) -> Verdict:
        if not view.roles_known:
            return self.not_judged("speakers unknown (mono mix)")
        thr = self.opts.min_overlap_seconds
        events, longest = [], 0.0
        customer = view.of(CUSTOMER)
        for a in view.of(AGENT):
            for c in customer:
                if c.start < a.start < c.end:
                    overlap = min(a.end, c.end) - a.start
                    longest = max(longest, overlap)
                    if overlap > thr:
                        events.append(
                            self.event(
                                [a],
                                ramp(overlap, thr, thr),
                                f"agent talks over the customer for {overlap:.1f} s",
                                span=(a.start, min(a.end, c.end)),
                            )
                        )
        conf = max((e.confidence for e in events), default=1.0 - ramp(longest, thr, thr))
        return self.verdict(
            bool(events),
            conf,
            events,
            f"{len(events)} interruption(s)",
            longest_overlap=longest,
            count=len(events),
        )


class DeadAirSettings(Options):
    max_seconds: float = Field(5.0, gt=0)
    #: What counts as telling the customer to hold (请您稍等 ...).
    hold: Phrases = Field(default_factory=Phrases)
    #: The hold notice must be in the agent's last turn before the gap, ending at most this long before it.
    hold_lookback_seconds: float = Field(3.0, ge=0)


@register
class DeadAir(Detector):
    """A stretch with nobody speaking longer than the limit, unless the agent announced a hold just before."""

    name = "dead_air"
    Settings = DeadAirSettings

    def setup(self) -> None:
        self.hold = self.opts.hold.matcher()

    def judge(self, view: CallView) -> Verdict:
        thr = self.opts.max_seconds
        events, longest, held = [], 0.0, 0
        agent = view.of(AGENT) if view.roles_known else view.turns
        for start, end in view.gaps():
            length = end - start
            if length <= thr:
                continue
            before = [t for t in agent if t.end <= start + 1e-6]
            last = before[-1] if before else None
            if (
                last is not None
                and start - last.end <= self.opts.hold_lookback_seconds
                and self.hold
                and self.hold.find(last)
            ):
                held += 1
                continue
            longest = max(longest, length)
            after = last.text if last is not None else ""
            events.append(
                self.event(
                    [last] if last else [],
                    ramp(length, thr, thr * 0.4),
                    f"{length:.1f} s of silence without a hold notice",
                    after,
                    span=(start, end),
                )
            )
        conf = max((e.confidence for e in events), default=0.9)
        return self.verdict(
            bool(events),
            conf,
            events,
            f"{len(events)} unannounced silence(s)",
            longest_silence=longest,
            count=len(events),
            announced_holds=held,
        )


class RateSettings(Options):
    speaker: Literal["agent", "customer"] = AGENT
    min_cpm: float = Field(180.0, gt=0)
    max_cpm: float = Field(300.0, gt=0)
    #: Less speech than this and the rate is not judged.
    min_seconds: float = Field(10.0, ge=0)


@register
class SpeechRate(Detector):
    """Chinese characters per minute of the speaker's speaking time, against the rubric's range."""

    name = "speech_rate"
    Settings = RateSettings

    def judge(self, view: CallView) -> Verdict:
        if not view.roles_known:
            return self.not_judged("speakers unknown (mono mix)")
        turns = view.of(self.opts.speaker)
        seconds = sum(t.duration for t in turns)
        if seconds < self.opts.min_seconds:
            return self.not_judged(f"only {seconds:.1f} s of {self.opts.speaker} speech")
        chars = sum(len(_HAN.findall(t.text)) for t in turns)
        cpm = 60.0 * chars / seconds
        lo, hi = self.opts.min_cpm, self.opts.max_cpm
        if lo <= cpm <= hi:
            margin = min(cpm - lo, hi - cpm)
            return self.verdict(
                False,
                ramp(margin, 0.0, 0.1 * (hi - lo)),
                reason=f"{cpm:.0f} chars/min",
                **self._sides(cpm),
            )
        off = lo - cpm if cpm < lo else cpm - hi
        side = "slow" if cpm < lo else "fast"
        ev = self.event(
            turns,
            ramp(off, 0.0, 0.1 * (hi - lo)),
            f"{cpm:.0f} chars/min, too {side} (range {lo:.0f}-{hi:.0f})",
            " / ".join(t.text for t in turns[:3]),
        )
        return self.verdict(True, ev.confidence, [ev], ev.detail, **self._sides(cpm))

    def _sides(self, cpm: float) -> dict[str, float]:
        """The rate and how far beyond each end of the range it is: a linear model cannot see "outside
        the range" in the rate alone."""
        lo, hi = self.opts.min_cpm, self.opts.max_cpm
        return {"cpm": cpm, "over": max(0.0, cpm - hi) / hi, "under": max(0.0, lo - cpm) / lo}
