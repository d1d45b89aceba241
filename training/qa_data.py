"""What the QA model learns from: the pipeline's view of each call (never the ground-truth text) and
the inspectors' labels for it."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import RootModel

from callqa.data.labels import CallLabels, first_inspection_labels, resolved_labels
from callqa.data.results import CallResult
from callqa.data.rubric import Rubric
from callqa.data.schema import CallRecord, SchemaError, iter_jsonl
from callqa.data.scores import CallScore
from callqa.models.qa.features import call_features
from callqa.qa.rules import RuleSet
from callqa.qa.sheet import unjudgeable
from callqa.qa.timeline import CallView

log = logging.getLogger(__name__)

LABEL_MODES = ("resolved", "first")


class HeardLine(RootModel[CallScore | CallResult]):
    """One line of a heard file: a score with the call it heard, or a bare pipeline result."""


def read_heard(path: str | os.PathLike[str]) -> dict[str, CallResult]:
    """Pipeline results by call id, from ``callqa score --raw`` output (or ``callqa transcribe
    --format jsonl --raw``). Masked text is refused: the confidentiality rule must see the numbers."""
    out: dict[str, CallResult] = {}
    for line in iter_jsonl(path, HeardLine):
        result = line.root.call if isinstance(line.root, CallScore) else line.root
        if result is None:
            raise SchemaError(
                f"{path}: call {line.root.id}: a score without the call it heard (scored from text?)"
            )
        if result.masked and result.turns:
            raise SchemaError(f"{path}: call {result.id}: masked transcripts; score with --raw for training")
        out[result.id] = result
    return out


@dataclass
class QaData:
    ids: list[str]
    rows: list[dict[str, float]]
    labels: list[CallLabels]
    views: list[CallView]


def qa_data(
    calls: Sequence[CallRecord],
    heard: dict[str, CallResult],
    rubric: Rubric,
    labels: str = "resolved",
    rules: RuleSet | None = None,
) -> QaData:
    """Feature rows and labels for the calls that were both inspected and heard (with speech: a call
    the scorer would not judge teaches nothing about judging)."""
    if labels not in LABEL_MODES:
        raise ValueError(f"labels {labels!r}: use one of {LABEL_MODES}")
    views = {c.id: CallView.from_result(heard[c.id]) for c in calls if c.inspections and c.id in heard}
    usable = [c for c in calls if c.id in views and unjudgeable(views[c.id]) is None]
    missing = sum(1 for c in calls if c.inspections) - len(usable)
    if missing:
        log.warning("%d inspected call(s) have no pipeline result or no speech and are left out", missing)
    labs = (
        resolved_labels(usable, rubric)[0]
        if labels == "resolved"
        else first_inspection_labels(usable, rubric)
    )
    rules = rules or RuleSet(rubric)
    rows = []
    for c in usable:
        rows.append(call_features(views[c.id], rules.judge(views[c.id])))
    return QaData([c.id for c in usable], rows, labs, [views[c.id] for c in usable])
