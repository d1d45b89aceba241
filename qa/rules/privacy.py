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
    #: A number of this many digits read aloud counts as a full one even where the recogniser dropped
    #: or mis-heard digits and the PII detector's exact formats no longer fit: a 尾号 is four digits, a
    #: phone number eleven, and a small recogniser on a phone line loses a few (8 was chosen on the
    #: qa-train corpus's dev-split calls). ``glitches`` non-digit characters may interrupt it. None:
    #: the PII formats only.
    min_digits: int | None = Field(8, ge=5)
    glitches: int = Field(1, ge=0)


#: Digits as a recogniser writes them (Chinese read digit by digit, or Arabic).
_DIGITS = frozenset("0123456789０１２３４５６７８９零〇○一幺二两三四五六七八九")


def longest_number(text: str, glitches: int = 1) -> tuple[int, int, int]:
    """(digits, start, end) of the longest stretch of digit characters in ``text``, allowing up to
    ``glitches`` single non-digit characters between digits: a number the recogniser garbled in one place.
    """
    best = (0, 0, 0)
    i, n = 0, len(text)
    while i < n:
        if text[i] not in _DIGITS:
            i += 1
            continue
        j, count, left = i, 0, glitches
        while j < n:
            if text[j] in _DIGITS:
                count += 1
            elif left > 0 and j + 1 < n and text[j + 1] in _DIGITS:
                left -= 1
            else:
                break
            j += 1
        best = max(best, (count, i, j))
        i = j + 1
    return best


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
        events, longest = [], 0
        for t in view.of(self.opts.speaker):
            found = find_pii(t.text)
            spans = [s for s in found if s.kind in self.opts.kinds]
            digits, a, b = longest_number(t.text, self.opts.glitches)
            longest = max(longest, digits)
            # a run the PII formats recognise is judged by its kind (a centre may count cards only)
            known = any(s.start < b and a < s.end for s in found)
            if spans:
                kinds = ", ".join(sorted({s.kind for s in spans}))
                events.append(
                    self.event([t], 0.95, f"agent reads back a full number ({kinds})", mask_pii(t.text))
                )
            elif self.opts.min_digits is not None and digits >= self.opts.min_digits and not known:
                masked = mask_pii(t.text[:a] + "*" * (b - a) + t.text[b:])
                events.append(self.event([t], 0.8, f"agent reads out a {digits}-digit number", masked))
        return self.verdict(
            bool(events),
            max((e.confidence for e in events), default=0.9),
            events,
            f"{len(events)} full readback(s)",
            count=len(events),
            longest_number=float(longest),
        )
