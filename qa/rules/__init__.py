"""The rule engine: one detector per rubric item that names one, built once per rubric, run per call.

Detectors register by name (``rule: {detector: NAME, ...}`` in the rubric):
``required_phrase``, ``forbidden_phrase``, ``order``, ``politeness`` (what is said); ``overlap``,
``dead_air``, ``speech_rate`` (when); ``emotion``, ``deescalation`` (how it sounds); ``pii_readback``
(confidentiality). A centre's rubric reuses them with its own ids, thresholds and phrase lists.
"""

from __future__ import annotations

from pydantic import BaseModel

from callqa.data.rubric import Rubric
from callqa.qa.rules import affect, phrases, privacy, timing  # noqa: F401  (they register their detectors)
from callqa.qa.rules.base import DETECTORS, Detector, Phrases, Verdict, unknown_rule
from callqa.qa.timeline import CallView

__all__ = ["DETECTORS", "RuleSet", "Verdict"]


class RuleSet:
    """The detectors of one rubric. Items without a ``rule`` block are left to the QA model."""

    def __init__(self, rubric: Rubric, source: str = "rubric") -> None:
        self.rubric = rubric
        self.detectors: dict[str, Detector] = {}
        for item in rubric.items:
            if item.rule is None:
                continue
            cls = DETECTORS.get(str(item.rule.get("detector")))
            if cls is None:
                raise unknown_rule(item, source)
            self.detectors[item.id] = cls(item, source)

    def phrases(self) -> list[str]:
        """Every phrase of two or more characters in the detectors' lists: what the pipeline spots in
        the ASR posteriors (models.asr.keywords) for this rubric."""
        found: list[str] = []
        for det in self.detectors.values():
            found += _phrases_in(det.opts)
        return list(dict.fromkeys(p for p in found if len(p) >= 2))

    def judge(self, view: CallView) -> dict[str, Verdict]:
        """Every item's verdict; items without a detector are reported as not judged."""
        out: dict[str, Verdict] = {}
        for item in self.rubric.items:
            det = self.detectors.get(item.id)
            out[item.id] = (
                det.judge(view)
                if det
                else Verdict(item.id, False, 0.0, judged=False, reason="no rule for this item")
            )
        return out


def _phrases_in(opts: BaseModel) -> list[str]:
    out = list(opts.phrases) if isinstance(opts, Phrases) else []
    for name in type(opts).model_fields:
        value = getattr(opts, name)
        if isinstance(value, BaseModel):
            out += _phrases_in(value)
    return out
