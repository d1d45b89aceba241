"""The figures a researcher asks of a call-quality model: per item detection and calibration, and
agreement of total scores, each with a bootstrap 95 % interval over calls.

QWK is computed on totals rounded to whole points (0-100, quadratic weights), so a 2-point disagreement
costs four times a 1-point one; band agreement is reported beside it for the decision inspectors make.
ICC is ICC(A,1) (two-way, absolute agreement, single rater): a rater who is consistently 5 points
harsher loses ICC but keeps Spearman, which is why both are given.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from callqa.evaluation.agreement import krippendorff_alpha

N_BOOT = 1000


@dataclass
class Interval:
    value: float
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [round(self.value, 4), round(self.low, 4), round(self.high, 4)]


def boot(stat: Callable[..., float], *arrays: np.ndarray, n: int = N_BOOT, seed: int = 0) -> Interval:
    """``stat(*arrays)`` with a percentile bootstrap over calls (rows resampled together)."""
    value = _safe(stat, *arrays)
    size = len(arrays[0])
    if size < 2:
        return Interval(value, float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        idx = rng.integers(0, size, size)
        vals.append(_safe(stat, *(a[idx] for a in arrays)))
    v = np.array(vals)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Interval(value, float("nan"), float("nan"))
    lo, hi = np.percentile(v, [2.5, 97.5])
    return Interval(value, float(lo), float(hi))


def _safe(stat: Callable[..., float], *arrays: np.ndarray) -> float:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return float(stat(*arrays))
        except ValueError:
            return float("nan")


# --- items -------------------------------------------------------------------------------------------------


def precision(y: np.ndarray, pred: np.ndarray) -> float:
    return float((y & pred).sum() / pred.sum()) if pred.sum() else float("nan")


def recall(y: np.ndarray, pred: np.ndarray) -> float:
    return float((y & pred).sum() / y.sum()) if y.sum() else float("nan")


def f1(y: np.ndarray, pred: np.ndarray) -> float:
    denom = y.sum() + pred.sum()
    return float(2 * (y & pred).sum() / denom) if denom else float("nan")


def auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the call-weighted gap between predicted and observed defect rates."""
    edges = np.linspace(0, 1, bins + 1)
    k = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return float(
        sum(abs(p[k == b].mean() - y[k == b].mean()) * (k == b).sum() for b in range(bins) if (k == b).any())
        / len(p)
    )


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean predicted, observed rate, calls) per probability bin, for the reliability plot."""
    edges = np.linspace(0, 1, bins + 1)
    k = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return [
        (float(p[k == b].mean()), float(y[k == b].mean()), int((k == b).sum()))
        for b in range(bins)
        if (k == b).any()
    ]


def item_metrics(
    y: np.ndarray, p: np.ndarray, pred: np.ndarray, n_boot: int = N_BOOT
) -> dict[str, list[float] | int]:
    y, pred = y.astype(bool), pred.astype(bool)
    return {
        "positives": int(y.sum()),
        "calls": len(y),
        "precision": boot(precision, y, pred, n=n_boot).as_list(),
        "recall": boot(recall, y, pred, n=n_boot).as_list(),
        "f1": boot(f1, y, pred, n=n_boot).as_list(),
        "auc": boot(auc, y, p, n=n_boot).as_list(),
        "ece": boot(ece, y, p, n=n_boot).as_list(),
    }


# --- totals -------------------------------------------------------------------------------------------------


def qwk(a: np.ndarray, b: np.ndarray) -> float:
    labels = list(range(101))
    return float(
        cohen_kappa_score(np.rint(a).astype(int), np.rint(b).astype(int), labels=labels, weights="quadratic")
    )


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(sps.pearsonr(a, b).statistic) if np.ptp(a) and np.ptp(b) else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(sps.spearmanr(a, b).statistic) if np.ptp(a) and np.ptp(b) else float("nan")


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def icc_a1(a: np.ndarray, b: np.ndarray) -> float:
    """ICC(A,1) of two raters (McGraw & Wong): absolute agreement, two-way model."""
    x = np.stack([a, b], axis=1)
    n, k = x.shape
    grand = x.mean()
    ms_r = k * ((x.mean(1) - grand) ** 2).sum() / (n - 1)
    ms_c = n * ((x.mean(0) - grand) ** 2).sum() / (k - 1)
    sse = ((x - x.mean(1, keepdims=True) - x.mean(0, keepdims=True) + grand) ** 2).sum()
    ms_e = sse / ((n - 1) * (k - 1))
    return float((ms_r - ms_e) / (ms_r + (k - 1) * ms_e + k * (ms_c - ms_e) / n))


def alpha(a: np.ndarray, b: np.ndarray) -> float:
    return krippendorff_alpha(np.stack([a, b]), "interval")


def smd(a: np.ndarray, b: np.ndarray) -> float:
    """Standardised mean difference a - b over the pooled standard deviation (negative: a is harsher)."""
    sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return float((a.mean() - b.mean()) / sd) if sd > 0 else float("nan")


def band_index(totals: np.ndarray, minimums: Sequence[float]) -> np.ndarray:
    """Band per total as an index (0 = best), from the rubric's band minimums listed best first."""
    return np.array([next(i for i, m in enumerate(minimums) if t >= m) for t in totals])


def total_metrics(
    a: np.ndarray, b: np.ndarray, minimums: Sequence[float], n_boot: int = N_BOOT
) -> dict[str, list[float] | int]:
    """Agreement of totals ``a`` (the rater under test) with ``b`` (the reference)."""
    ba, bb = band_index(a, minimums), band_index(b, minimums)
    return {
        "calls": len(a),
        "qwk": boot(qwk, a, b, n=n_boot).as_list(),
        "pearson": boot(pearson, a, b, n=n_boot).as_list(),
        "spearman": boot(spearman, a, b, n=n_boot).as_list(),
        "mae": boot(mae, a, b, n=n_boot).as_list(),
        "icc": boot(icc_a1, a, b, n=n_boot).as_list(),
        "alpha": boot(alpha, a, b, n=n_boot).as_list(),
        "band_exact": boot(lambda x, y: float((x == y).mean()), ba, bb, n=n_boot).as_list(),
        "band_adjacent": boot(lambda x, y: float((np.abs(x - y) <= 1).mean()), ba, bb, n=n_boot).as_list(),
        "smd": boot(smd, a, b, n=n_boot).as_list(),
    }
