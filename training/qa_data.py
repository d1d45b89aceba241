"""What the QA model learns from: the pipeline's view of each call (never the ground-truth text) and
the inspectors' labels for it."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from callqa.data.labels import CallLabels, first_inspection_labels, resolved_labels
from callqa.data.results import CallResult
from callqa.data.rubric import Rubric
from callqa.data.schema import CallRecord, SchemaError
from callqa.data.scores import CallScore
from callqa.models.qa.features import call_features
from callqa.qa.rules import RuleSet
from callqa.qa.timeline import CallView

log = logging.getLogger(__name__)

LABEL_MODES = ("resolved", "first")


def read_heard(path: str | os.PathLike[str]) -> dict[str, CallResult]:
    """Pipeline results by call id, from ``callqa score --raw`` output (or ``callqa transcribe
    --format jsonl --raw``). Masked text is refused: the confidentiality rule must see the numbers."""
    out: dict[str, CallResult] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                result = (
                    CallScore.model_validate(obj).call if "items" in obj else CallResult.model_validate(obj)
                )
            except (json.JSONDecodeError, ValueError) as exc:
                raise SchemaError(
                    f"{path}:{lineno}: not a call result ({str(exc).splitlines()[0]})"
                ) from None
            if result is None:
                raise SchemaError(f"{path}:{lineno}: a score without the call it heard (scored from text?)")
            if result.masked and result.turns:
                raise SchemaError(f"{path}:{lineno}: masked transcripts; score with --raw for training")
            out[result.id] = result
    return out


@dataclass
class QaData:
    ids: list[str]
    rows: list[dict[str, float]]
    labels: list[CallLabels]


def qa_data(
    calls: Sequence[CallRecord],
    heard: dict[str, CallResult],
    rubric: Rubric,
    labels: str = "resolved",
    rules: RuleSet | None = None,
) -> QaData:
    """Feature rows and labels for the calls that were both inspected and heard."""
    if labels not in LABEL_MODES:
        raise ValueError(f"labels {labels!r}: use one of {LABEL_MODES}")
    usable = [c for c in calls if c.inspections and c.id in heard]
    missing = sum(1 for c in calls if c.inspections and c.id not in heard)
    if missing:
        log.warning("%d inspected call(s) have no pipeline result and are left out", missing)
    labs = (
        resolved_labels(usable, rubric)[0]
        if labels == "resolved"
        else first_inspection_labels(usable, rubric)
    )
    rules = rules or RuleSet(rubric)
    rows = []
    for c in usable:
        view = CallView.from_result(heard[c.id])
        rows.append(call_features(view, rules.judge(view)))
    return QaData([c.id for c in usable], rows, labs)
