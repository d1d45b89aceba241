"""Confidentiality: the agent reads a full phone, ID or card number aloud."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from callqa.data.constants import AGENT
from callqa.data.pii import PII_KINDS, find_pii, mask_pii
from callqa.qa.rules.base import Detector, Options, Verdict, register
from callqa.qa.timeline import CallView


class ReadbackSettings(Options):
    speaker: Literal["agent", "customer"] = AGENT
    kinds: list[Literal[PII_KINDS]] = Field(default_factory=lambda: list(PII_KINDS))  # type: ignore[valid-type]


@register
class PiiReadback(Detector):
    """Full numbers found by the PII detector in the agent's speech; 尾号/后四位 readbacks are short and
    are not found. The customer saying their own number is how verification works and is not counted.
    The evidence is masked: a finding about leaked data must not leak it again."""

    name = "pii_readback"
    Settings = ReadbackSettings

    def judge(self, view: CallView) -> Verdict:
        if not view.roles_known:
            return self.not_judged("speakers unknown (mono mix)")
        events = []
        for t in view.of(self.opts.speaker):
            spans = [s for s in find_pii(t.text) if s.kind in self.opts.kinds]
            if spans:
                kinds = ", ".join(sorted({s.kind for s in spans}))
                events.append(
                    self.event([t], 0.95, f"agent reads back a full number ({kinds})", mask_pii(t.text))
                )
        return self.verdict(
            bool(events),
            0.95 if events else 0.9,
            events,
            f"{len(events)} full readback(s)",
            count=len(events),
        )
