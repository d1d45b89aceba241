"""A paired bootstrap of how much a new model differs from the champion on the same evaluation items.

Two models scored on the same calls have separate bootstrap intervals that overlap even when one is
worse call by call, because most of each interval's width is which calls happened to be drawn, and
that is shared. Resampling the items once for both models and taking the difference cancels it, so
the interval is of the change alone.

Each evaluation report keeps, under ``per_item``, what its headline metric is recomputed from, keyed
by item id: ASR ``[errors, reference characters]`` per utterance (CER is their ratio of sums), SER
``[label, prediction]`` per turn (UA, the mean recall over the labels present), QA ``[model total,
consensus total]`` per call (QWK). Only items present in both reports are compared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from callqa.evaluation.qa_metrics import Interval, boot, qwk
from callqa.evaluation.ser_metrics import classification_metrics


def _cer(rows: np.ndarray) -> float:
    return float(rows[:, 0].sum() / max(1.0, rows[:, 1].sum()))


def _ua(rows: np.ndarray) -> float:
    labels, preds = rows[:, 0].astype(int), rows[:, 1].astype(int)
    return float(classification_metrics(labels, preds, int(rows.max()) + 1)["ua"])


def _qwk(rows: np.ndarray) -> float:
    return qwk(rows[:, 0], rows[:, 1])


METRICS: dict[str, Callable[[np.ndarray], float]] = {"cer": _cer, "ua": _ua, "qwk": _qwk}


def per_item(report: Mapping[str, Any]) -> dict[str, list[float]]:
    """The report's per-item rows (empty for a report written before they were kept)."""
    return {str(k): list(v) for k, v in (report.get("per_item") or {}).items()}


def paired_difference(
    metric: str,
    new: Mapping[str, Sequence[float]],
    old: Mapping[str, Sequence[float]],
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[Interval, int] | None:
    """``metric(new) - metric(old)`` over the items both hold, with its paired 95 % interval, and how
    many items were paired; None when fewer than two are."""
    common = sorted(set(new) & set(old))
    if len(common) < 2:
        return None
    a = np.array([new[k] for k in common], dtype=np.float64)
    b = np.array([old[k] for k in common], dtype=np.float64)
    stat = METRICS[metric]
    width = a.shape[1]

    def diff(*cols: np.ndarray) -> float:
        rows = np.stack(cols, axis=1)
        return stat(rows[:, :width]) - stat(rows[:, width:])

    return boot(diff, *a.T, *b.T, n=n_boot, seed=seed), len(common)
