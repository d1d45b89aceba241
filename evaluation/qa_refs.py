"""What a QA model is compared with: the inspectors' consensus, each inspector alone, the ground truth.

On an evaluation corpus every call is scored by every inspector (calibration sheets), so a consensus
exists per call: an item is a defect when at least half the inspectors flagged it, and the total is the
mean of their totals. Each inspector is compared with the consensus of the *others* (leave one out), so
nobody is compared with an average that contains themselves.

The ground truth (synthetic corpora only) says which defects were put into the call, not how many
points each costs; agreement with it is therefore measured on decisions, with every flagged item
costing its full points, for the model and for the inspectors alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from callqa.data.labels import POOLED_KINDS, flagged
from callqa.data.rubric import Rubric
from callqa.data.schema import CallRecord, Inspection

#: A consensus needs at least this many independent sheets.
MIN_RATERS = 3


@dataclass
class Consensus:
    call_ids: list[str]
    #: inspector -> per call (aligned with call_ids) their sheet or None.
    sheets: dict[str, list[Inspection | None]]

    @property
    def inspectors(self) -> list[str]:
        return sorted(self.sheets)

    def _present(self, i: int, exclude: str | None) -> list[Inspection]:
        return [s[i] for r, s in self.sheets.items() if r != exclude and s[i] is not None]  # type: ignore[misc]

    def totals(self, exclude: str | None = None) -> np.ndarray:
        n = len(self.call_ids)
        return np.array([np.mean([s.total for s in self._present(i, exclude)]) for i in range(n)])

    def flags(self, item: str, exclude: str | None = None) -> np.ndarray:
        n = len(self.call_ids)
        shares = [np.mean([flagged(s, item) for s in self._present(i, exclude)]) for i in range(n)]
        return np.array(shares) >= 0.5

    def fatal(self, rubric: Rubric, exclude: str | None = None) -> np.ndarray:
        fatal_items = [i.id for i in rubric.items if i.fatal]
        out = np.zeros(len(self.call_ids), bool)
        for item in fatal_items:
            out |= self.flags(item, exclude)
        return out

    def rater(self, inspector: str) -> tuple[np.ndarray, np.ndarray]:
        """(mask of calls this inspector scored, their totals there)."""
        s = self.sheets[inspector]
        mask = np.array([x is not None for x in s])
        return mask, np.array([x.total if x is not None else np.nan for x in s])


def consensus(calls: Sequence[CallRecord]) -> Consensus:
    """Calls with at least :data:`MIN_RATERS` independent sheets; each inspector's latest sheet counts."""
    kept: list[str] = []
    rows: list[dict[str, Inspection]] = []
    for c in calls:
        latest: dict[str, Inspection] = {}
        for s in sorted(c.inspections, key=lambda s: s.at):
            if s.kind in POOLED_KINDS:
                latest[s.inspector_id] = s
        if len(latest) >= MIN_RATERS:
            kept.append(c.id)
            rows.append(latest)
    inspectors = sorted({r for row in rows for r in row})
    per = {r: [row.get(r) for row in rows] for r in inspectors}
    return Consensus(kept, per)


def decision_total(rubric: Rubric, defects: set[str] | Sequence[str]) -> float:
    """A total that counts only which items were flagged, each at its full points (fatal zeroes)."""
    d = set(defects)
    fatal = [i.id for i in rubric.items if i.fatal and i.id in d]
    return rubric.total({i: rubric[i].points for i in d if i in rubric.ids}, fatal)


def sheet_defects(sheet: Inspection, rubric: Rubric) -> set[str]:
    return {i for i in rubric.ids if flagged(sheet, i)}
