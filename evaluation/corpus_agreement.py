"""Inspectors against each other: Krippendorff's α on calibration totals and per-item flags (with a
bootstrap CI), and Spearman and mean differences for every pair that scored calls in common."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import numpy as np

from callqa.data.corpus import Corpus
from callqa.data.schema import CallRecord
from callqa.evaluation.agreement import (
    interval_alpha_ci,
    krippendorff_alpha,
    pairwise_agreement,
    score_matrix,
)
from callqa.evaluation.corpus_inspections import deducted, is_calibration, primary_inspections, primary_scores
from callqa.evaluation.corpus_results import AgreementStats, finite


def agreement_stats(corpus: Corpus, n_boot: int = 1000, seed: int = 0) -> AgreementStats:
    """Inspectors against each other: α on calibration totals and per-item flags, and every pair."""
    calibration = [c for c in corpus.calls if is_calibration(c)]
    scores = primary_scores(calibration)
    inspectors, _, matrix = score_matrix(scores)
    alpha = finite(krippendorff_alpha(matrix, "interval")) if calibration else None
    ci = [finite(v) for v in interval_alpha_ci(matrix, n=n_boot, seed=seed)] if alpha is not None else None
    pairs = pairwise_agreement(primary_scores(corpus.calls), min_common=3)
    rhos = [p.spearman for p in pairs if math.isfinite(p.spearman)]
    return AgreementStats(
        calibration_calls=len(calibration),
        inspectors=inspectors,
        alpha_total=alpha,
        alpha_total_ci=ci if ci and None not in ci else None,
        item_alpha={item: _item_alpha(calibration, item) for item in corpus.rubric.ids},
        pairwise=[
            dataclasses.replace(
                p,
                spearman=finite(p.spearman),
                mean_abs_diff=finite(p.mean_abs_diff),
                mean_diff=finite(p.mean_diff),
            )
            for p in pairs
        ],
        mean_pairwise_spearman=finite(np.mean(rhos)) if rhos else None,
    )


def _item_alpha(calibration: list[CallRecord], item: str) -> float | None:
    flags: dict[str, dict[str, float]] = defaultdict(dict)
    for c in calibration:
        for inspector, insp in primary_inspections(c).items():
            flags[inspector][c.id] = float(deducted(insp, item))
    if not flags:
        return None
    return finite(krippendorff_alpha(score_matrix(flags)[2], "nominal"))
