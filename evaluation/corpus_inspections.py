"""Which of a call's inspector sheets count as judgements, and what the truth would score.

An inspector's *primary* score of a call is their earliest ``sample`` or ``calibration`` inspection of it:
re-checks see the model's flags and appeals follow the agent's argument, so they measure another process
and are left out of bias, agreement, drift and rates (they are still counted per inspector). A
*calibration call* has primary scores from at least three distinct inspectors.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from callqa.data.rubric import Rubric
from callqa.data.schema import CallRecord, Inspection

#: Inspection kinds that are an inspector's own first judgement of a call.
PRIMARY_KINDS = ("sample", "calibration")
#: Distinct inspectors that make a call a calibration call.
MIN_CALIBRATION_INSPECTORS = 3


def primary_inspections(call: CallRecord) -> dict[str, Inspection]:
    """Each inspector's earliest sample/calibration inspection of the call."""
    out: dict[str, Inspection] = {}
    for insp in sorted(call.inspections, key=lambda i: utc(i.at)):
        if insp.kind in PRIMARY_KINDS and insp.inspector_id not in out:
            out[insp.inspector_id] = insp
    return out


def first_inspection(call: CallRecord) -> Inspection | None:
    primary = primary_inspections(call)
    return min(primary.values(), key=lambda i: utc(i.at)) if primary else None


def is_calibration(call: CallRecord) -> bool:
    return len(primary_inspections(call)) >= MIN_CALIBRATION_INSPECTORS


def deducted(insp: Inspection, item_id: str) -> bool:
    """An inspector flagged an item when they took points off it or vetoed the call on it."""
    return insp.items.get(item_id, 0.0) > 0.0 or item_id in insp.fatal


def truth_total(rubric: Rubric, defects: Iterable[str]) -> float:
    """The score a perfect inspector gives: every true defect loses its full points, fatal ones veto."""
    known = [d for d in defects if d in rubric.ids]
    return rubric.total({d: rubric[d].points for d in known}, [d for d in known if rubric[d].fatal])


def utc(dt: datetime) -> datetime:
    """Naive and aware timestamps mixed in one export must still compare; naive ones are taken as UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def primary_scores(calls: Iterable[CallRecord]) -> dict[str, dict[str, float]]:
    """``{inspector: {call_id: primary total}}``, the shape every agreement function takes."""
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for c in calls:
        for inspector, insp in primary_inspections(c).items():
            scores[inspector][c.id] = insp.total
    return dict(scores)
