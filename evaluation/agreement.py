"""Agreement between raters: inspectors with each other, and later a model beside them.

One inspector is a weak target (DOMAIN.md): every figure here is therefore defined for *any* set of raters
scoring *any* units, so the same functions compare inspectors among themselves today and a model against
the inspectors' consensus tomorrow. Scores come in one shape throughout, ``{rater: {unit: score}}``, with
missing scores simply absent; matrices are raters × units with NaN where a rater did not score a unit.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import krippendorff
import numpy as np
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score

log = logging.getLogger(__name__)

Scores = Mapping[str, Mapping[str, float]]
Level = Literal["interval", "nominal", "ordinal", "ratio"]

#: Largest number of resampled values held in memory at once by the bootstrap (keeps big corpora flat).
_BOOT_CHUNK_VALUES = 4_000_000
#: Above this many distinct values interval α is computed in closed form instead of by the package.
PACKAGE_MAX_VALUES = 200


@dataclass(frozen=True)
class PairAgreement:
    """Two raters on the units both scored; ``mean_diff`` is a − b, so its sign says who is harsher."""

    rater_a: str
    rater_b: str
    n: int
    spearman: float
    mean_abs_diff: float
    mean_diff: float


@dataclass(frozen=True)
class RaterBias:
    """A rater's mean signed departure from the others (negative: harsher), with a bootstrap 95 % CI."""

    rater: str
    n: int
    bias: float
    ci_low: float
    ci_high: float


def score_matrix(
    scores: Scores, raters: Sequence[str] | None = None
) -> tuple[list[str], list[str], np.ndarray]:
    """Lay ``{rater: {unit: score}}`` out as a raters × units float matrix, NaN where a score is missing.

    Raters and units come back sorted so that equal data gives equal matrices and equal statistics.
    """
    rater_ids = sorted(scores) if raters is None else list(raters)
    units = sorted({u for r in rater_ids for u in scores.get(r, {})})
    col = {u: j for j, u in enumerate(units)}
    matrix = np.full((len(rater_ids), len(units)), np.nan)
    for i, r in enumerate(rater_ids):
        for u, v in scores.get(r, {}).items():
            matrix[i, col[u]] = float(v)
    return rater_ids, units, matrix


def _pairable(matrix: np.ndarray) -> np.ndarray:
    """Keep the units at least two raters scored: alpha ignores the others, and the package rejects them."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"expected a raters × units matrix, got shape {matrix.shape}")
    return matrix[:, np.sum(~np.isnan(matrix), axis=0) >= 2]


def krippendorff_alpha(matrix: np.ndarray | Sequence[Sequence[float]], level: Level = "interval") -> float:
    """Krippendorff's α over a raters × units matrix with NaN for missing scores.

    Returns NaN, not an exception, when α is undefined (fewer than two pairable units or a single value in
    the whole matrix, e.g. an item nobody ever flagged), because a report must go on past one quiet item.

    The package builds a values × values coincidence matrix, which is slow for continuous scores (a model's
    predicted totals: thousands of distinct values). Interval α has an exact closed form in per-unit sums,
    used above :data:`PACKAGE_MAX_VALUES` distinct values; both paths give the same number.
    """
    data = _pairable(np.asarray(matrix, dtype=float))
    distinct = np.unique(data[~np.isnan(data)]).size
    if data.shape[1] < 2 or distinct < 2:
        return float("nan")
    if level == "interval" and distinct > PACKAGE_MAX_VALUES:
        return float(_interval_alpha_from_sums(*(s.sum() for s in _interval_unit_sums(data))))
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def _interval_unit_sums(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pairable unit: count, sum, sum of squares and the within-unit disagreement term of interval α."""
    data = _pairable(matrix)
    present = ~np.isnan(data)
    x = np.where(present, data, 0.0)
    m = present.sum(axis=0).astype(float)
    s1 = x.sum(axis=0)
    s2 = (x * x).sum(axis=0)
    # Σ_{i≠j} (x_i − x_j)² = 2 (m Σx² − (Σx)²), divided by (m − 1) as in Krippendorff's coincidences.
    within = 2.0 * (m * s2 - s1 * s1) / (m - 1.0)
    return m, s1, s2, within


def _interval_alpha_from_sums(
    m: np.ndarray, s1: np.ndarray, s2: np.ndarray, within: np.ndarray
) -> np.ndarray | float:
    """Interval α from (possibly bootstrap-weighted) unit sums; works on scalars and on batches alike."""
    n = m
    with np.errstate(divide="ignore", invalid="ignore"):
        d_o = within / n
        d_e = 2.0 * (n * s2 - s1 * s1) / (n * (n - 1.0))
        return 1.0 - d_o / d_e


def interval_alpha_ci(
    matrix: np.ndarray | Sequence[Sequence[float]], n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Bootstrap CI of interval α, resampling units.

    The package recomputes a coincidence matrix per call (~15 ms for 5 × 50), far too slow for 1,000
    resamples; interval α has a closed form in per-unit sums, so every resample is one matrix product.
    """
    m, s1, s2, within = _interval_unit_sums(np.asarray(matrix, dtype=float))
    k = m.size
    if k < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(k, np.full(k, 1.0 / k), size=n).astype(float)
    sums = np.stack([m, s1, s2, within], axis=1)
    bm, bs1, bs2, bwithin = (weights @ sums).T
    alphas = np.asarray(_interval_alpha_from_sums(bm, bs1, bs2, bwithin))
    alphas = alphas[np.isfinite(alphas)]
    if alphas.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(alphas, [tail, 100.0 - tail])
    return float(lo), float(hi)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    stat: Callable[..., np.ndarray] = np.mean,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat`` over ``values``, seeded so that a report is reproducible.

    ``stat`` is called on a (resamples × values) block with ``axis=1`` (numpy reductions accept it); a stat
    without an ``axis`` argument is applied row by row instead. Resamples are drawn in chunks so that a
    large corpus does not allocate n × len(values) at once.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n, _BOOT_CHUNK_VALUES // x.size))
    out: list[np.ndarray] = []
    for start in range(0, n, chunk):
        idx = rng.integers(0, x.size, size=(min(chunk, n - start), x.size))
        out.append(_apply_rowwise(stat, x[idx]))
    boot = np.concatenate(out)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])
    return float(lo), float(hi)


def _apply_rowwise(stat: Callable[..., np.ndarray], block: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(stat(block, axis=1), dtype=float)
    except TypeError:
        return np.asarray([stat(row) for row in block], dtype=float)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman ρ, NaN when a side is constant (scipy warns and returns NaN; the warning is noise here)."""
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(sps.spearmanr(a, b).statistic)


def pairwise_agreement(scores: Scores, min_common: int = 3) -> list[PairAgreement]:
    """Every pair of raters that share at least ``min_common`` units, in sorted rater order.

    Pairs with fewer shared units are left out rather than reported with a meaningless ρ.
    """
    pairs: list[PairAgreement] = []
    for a, b in itertools.combinations(sorted(scores), 2):
        common = sorted(set(scores[a]) & set(scores[b]))
        if len(common) < max(min_common, 1):
            continue
        xa = np.array([scores[a][u] for u in common], dtype=float)
        xb = np.array([scores[b][u] for u in common], dtype=float)
        diff = xa - xb
        pairs.append(
            PairAgreement(
                rater_a=a,
                rater_b=b,
                n=len(common),
                spearman=_spearman(xa, xb),
                mean_abs_diff=float(np.mean(np.abs(diff))),
                mean_diff=float(np.mean(diff)),
            )
        )
    return pairs


def cohen_kappa_flags(a: Sequence[int | bool], b: Sequence[int | bool]) -> float:
    """Cohen's κ between two raters' binary defect flags on the same calls, in the same order.

    NaN when κ is undefined (both raters gave one and the same flag everywhere): no chance-corrected
    agreement can be read from data without variation.
    """
    ya = np.asarray(a, dtype=int)
    yb = np.asarray(b, dtype=int)
    if ya.shape != yb.shape:
        raise ValueError(f"flags differ in length: {ya.shape} vs {yb.shape}")
    if ya.size == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(ya, yb, labels=[0, 1], replace_undefined_by=np.nan))


def leave_one_out_differences(scores: Scores, min_raters: int = 3) -> dict[str, dict[str, float]]:
    """For every unit scored by ≥ ``min_raters`` raters: each rater's score minus the mean of the others.

    Leaving the rater out keeps a harsh rater from dragging the consensus towards themselves, which would
    shrink their own bias (by a factor (k−1)/k with k raters).
    """
    rater_ids, units, matrix = score_matrix(scores)
    present = ~np.isnan(matrix)
    counts = present.sum(axis=0)
    keep = counts >= max(min_raters, 2)
    x = np.where(present, matrix, 0.0)[:, keep]
    present = present[:, keep]
    kept_units = [u for u, k in zip(units, keep, strict=True) if k]
    totals = x.sum(axis=0)
    others_mean = (totals[None, :] - x) / (counts[keep][None, :] - 1)
    diffs = x - others_mean
    out: dict[str, dict[str, float]] = {}
    for i, rater in enumerate(rater_ids):
        cols = np.flatnonzero(present[i])
        if cols.size:
            out[rater] = {kept_units[j]: float(diffs[i, j]) for j in cols}
    return out


def bias_vs_consensus(
    scores: Scores, min_raters: int = 3, n_boot: int = 1000, seed: int = 0
) -> dict[str, RaterBias]:
    """Each rater's mean signed difference from the leave-one-out consensus on units ≥ ``min_raters`` share.

    The CI resamples the rater's units, so it reflects how consistent the bias is from call to call.
    """
    return {
        rater: bias_from_differences(rater, list(diffs.values()), n_boot=n_boot, seed=seed)
        for rater, diffs in leave_one_out_differences(scores, min_raters).items()
    }


def bias_from_differences(
    rater: str, differences: Sequence[float], n_boot: int = 1000, seed: int = 0
) -> RaterBias:
    """A :class:`RaterBias` from signed differences against any reference (truth, consensus, a model)."""
    values = np.asarray(differences, dtype=float)
    if values.size == 0:
        nan = float("nan")
        return RaterBias(rater=rater, n=0, bias=nan, ci_low=nan, ci_high=nan)
    lo, hi = bootstrap_ci(values, n=n_boot, seed=seed)
    return RaterBias(rater=rater, n=int(values.size), bias=float(values.mean()), ci_low=lo, ci_high=hi)
