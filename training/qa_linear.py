"""Fitting the transparent QA model: per item a logistic regression on soft labels, Platt-calibrated on
out-of-fold predictions, with the decision threshold chosen for F1 on the same out-of-fold data."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from callqa.data.labels import CallLabels
from callqa.data.rubric import Rubric
from callqa.models.qa.features import item_feature_names
from callqa.models.qa.linear import ItemModel, LinearQa

log = logging.getLogger(__name__)

#: Fewer positives than this and there is nothing to cross-validate: no calibration, threshold 0.5.
MIN_POSITIVES = 5
FOLDS = 5
#: A fatal item zeroes the call, and a missed one is what a centre cannot afford: its threshold is the
#: highest that still finds this share of the out-of-fold defects (F1 decides for the other items).
FATAL_RECALL = 0.95


def _soft_fit(x: np.ndarray, p: np.ndarray, c: float) -> LogisticRegression:
    """Fit on P(defect) rather than a hard label: each call counts as a defect with weight p and as
    clean with weight 1 - p, so a call the inspectors disagree on pulls both ways."""
    xx = np.vstack([x, x])
    yy = np.r_[np.ones(len(x)), np.zeros(len(x))]
    ww = np.r_[p, 1.0 - p]
    keep = ww > 1e-6
    if len(np.unique(yy[keep])) < 2:  # every call the same: a constant model
        yy = np.r_[yy[keep], 1.0 - yy[keep][:1]]
        xx, ww = np.vstack([xx[keep], xx[keep][:1]]), np.r_[ww[keep], 1e-3]
        keep = np.ones(len(yy), bool)
    return LogisticRegression(C=c, max_iter=2000).fit(xx[keep], yy[keep], sample_weight=ww[keep])


def _recall_threshold(p: np.ndarray, y: np.ndarray, recall: float) -> float:
    for t in np.arange(0.85, 0.0, -0.05):
        if ((p >= t) & y).sum() >= recall * y.sum():
            return round(float(t), 2)
    return 0.05


def _best_threshold(p: np.ndarray, y: np.ndarray) -> float:
    best, best_f1 = 0.5, -1.0
    for t in np.arange(0.15, 0.86, 0.05):
        pred = p >= t
        tp = float((pred & y).sum())
        f1 = 2 * tp / max(1.0, pred.sum() + y.sum())
        if f1 > best_f1 + 1e-9:
            best, best_f1 = float(t), f1
    return round(best, 2)


def fit_item(
    item: str,
    names: list[str],
    rows: Sequence[Mapping[str, float]],
    labels: Sequence[CallLabels],
    default_points: float,
    c: float = 1.0,
    seed: int = 0,
    fatal: bool = False,
) -> ItemModel:
    feats = item_feature_names(item, names)
    x = np.array([[float(r.get(n, 0.0)) for n in feats] for r in rows])
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    p = np.array([lab.probability[item] for lab in labels])
    y = np.array([lab.defect[item] for lab in labels])
    model = _soft_fit(z, p, c)
    platt, threshold = (1.0, 0.0), 0.5
    if y.sum() >= MIN_POSITIVES and (~y).sum() >= MIN_POSITIVES:
        oof = np.zeros(len(z))
        folds = StratifiedKFold(n_splits=min(FOLDS, int(y.sum())), shuffle=True, random_state=seed)
        for tr, te in folds.split(z, y):
            oof[te] = _soft_fit(z[tr], p[tr], c).decision_function(z[te])
        cal = LogisticRegression(C=1e4, max_iter=1000).fit(oof[:, None], y)
        platt = (float(cal.coef_[0, 0]), float(cal.intercept_[0]))
        calibrated = 1 / (1 + np.exp(-(platt[0] * oof + platt[1])))
        threshold = (
            _recall_threshold(calibrated, y, FATAL_RECALL) if fatal else _best_threshold(calibrated, y)
        )
    pts = [lab.points[item] for lab in labels if lab.defect[item]]
    return ItemModel(
        features=feats,
        mean=[round(float(v), 6) for v in mean],
        scale=[round(float(v), 6) for v in scale],
        coef=[round(float(v), 6) for v in model.coef_[0]],
        intercept=round(float(model.intercept_[0]), 6),
        platt=(round(platt[0], 6), round(platt[1], 6)),
        threshold=threshold,
        points=round(float(np.mean(pts)) if pts else default_points, 3),
        positives=int(y.sum()),
        calls=len(y),
    )


def fit_linear(
    rows: Sequence[Mapping[str, float]],
    labels: Sequence[CallLabels],
    rubric: Rubric,
    meta: Mapping[str, object] | None = None,
    c: float = 1.0,
    seed: int = 0,
) -> LinearQa:
    """One item model per rubric item, on the features of ``rows`` (one per call, in ``labels`` order)."""
    if len(rows) != len(labels) or not rows:
        raise ValueError(
            f"need one feature row per labelled call (got {len(rows)} rows, {len(labels)} labels)"
        )
    names = sorted({n for r in rows for n in r})
    items = {}
    for item in rubric.items:
        items[item.id] = fit_item(item.id, names, rows, labels, item.points, c, seed, item.fatal)
        m = items[item.id]
        log.info("%s: %d/%d positives, threshold %.2f", item.id, m.positives, m.calls, m.threshold)
    ref = {"name": rubric.name, "version": rubric.version, "ids": rubric.ids}
    return LinearQa(ref, items, dict(meta or {}))
