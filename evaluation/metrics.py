"""Recognition metrics shared by training (dev CER), export gates and evaluation reports."""

from __future__ import annotations

import jiwer


def cer(refs: list[str], hyps: list[str]) -> float:
    """Character error rate over a set (jiwer, characters as tokens); empty references are skipped."""
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    if not pairs:
        return float("nan")
    return float(jiwer.cer([r for r, _ in pairs], [h for _, h in pairs]))
