"""Agreement statistics on raters whose behaviour is known by construction."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest

from callqa.evaluation.agreement import (
    bias_from_differences,
    bias_vs_consensus,
    bootstrap_ci,
    cohen_kappa_flags,
    interval_alpha_ci,
    krippendorff_alpha,
    leave_one_out_differences,
    pairwise_agreement,
    score_matrix,
)


def _raters(offsets: dict[str, float], n_units: int = 40, noise: float = 1.0, seed: int = 0):
    """Raters who see the same true quality per unit, each with a fixed offset and their own noise."""
    rng = np.random.default_rng(seed)
    base = rng.normal(80.0, 8.0, n_units)
    return {
        r: {f"u{j:03d}": float(v) for j, v in enumerate(base + off + rng.normal(0.0, noise, n_units))}
        for r, off in offsets.items()
    }


def test_identical_raters_agree_perfectly():
    scores = _raters({"a": 0.0}, noise=0.0)
    scores["b"] = dict(scores["a"])
    scores["c"] = dict(scores["a"])
    _, _, matrix = score_matrix(scores)
    assert krippendorff_alpha(matrix, "interval") == pytest.approx(1.0)
    pairs = pairwise_agreement(scores)
    assert len(pairs) == 3
    for p in pairs:
        assert p.spearman == pytest.approx(1.0)
        assert p.mean_abs_diff == 0.0
        assert p.n == 40


def test_rater_five_points_harsher_has_bias_minus_five_with_ci_excluding_zero():
    scores = _raters({"a": 0.0, "b": 0.0, "c": 0.0, "harsh": -5.0})
    bias = bias_vs_consensus(scores, min_raters=3)
    harsh = bias["harsh"]
    assert harsh.n == 40
    assert harsh.bias == pytest.approx(-5.0, abs=0.6)
    assert harsh.ci_low < harsh.bias < harsh.ci_high < 0.0
    # The others sit above a consensus that includes the harsh rater, each by about 5/3 points.
    for r in ("a", "b", "c"):
        assert bias[r].bias == pytest.approx(5.0 / 3.0, abs=0.6)
    assert min(bias.values(), key=lambda b: b.bias).rater == "harsh"


def test_pairwise_mean_difference_sign_says_who_is_harsher():
    scores = _raters({"a": 0.0, "harsh": -5.0}, noise=0.0)
    (pair,) = pairwise_agreement(scores)
    assert (pair.rater_a, pair.rater_b) == ("a", "harsh")
    assert pair.mean_diff == pytest.approx(5.0)
    assert pair.mean_abs_diff == pytest.approx(5.0)
    assert pair.spearman == pytest.approx(1.0)


def test_random_raters_have_alpha_near_zero():
    rng = np.random.default_rng(1)
    matrix = np.round(rng.normal(70.0, 10.0, size=(4, 300)))  # whole points, as sheets are scored
    assert abs(krippendorff_alpha(matrix, "interval")) < 0.08
    flags = rng.integers(0, 2, size=(4, 300)).astype(float)
    assert abs(krippendorff_alpha(flags, "nominal")) < 0.08


def test_missing_scores_are_nan_and_single_ratings_do_not_count():
    scores = {"a": {"u1": 1.0, "u2": 2.0, "u3": 3.0, "u4": 4.0}, "b": {"u1": 1.0, "u2": 3.0, "u3": 3.0}}
    scores["c"] = {"u2": 2.0, "u4": 5.0, "u5": 9.0}  # u5 has one rating only
    raters, units, matrix = score_matrix(scores)
    assert raters == ["a", "b", "c"] and units == ["u1", "u2", "u3", "u4", "u5"]
    assert np.isnan(matrix[1, 3]) and np.isnan(matrix[0, 4])
    expected = krippendorff.alpha(reliability_data=matrix[:, :4], level_of_measurement="interval")
    assert krippendorff_alpha(matrix, "interval") == pytest.approx(expected)
    assert math.isfinite(krippendorff_alpha(matrix, "ordinal"))


def test_continuous_scores_take_the_closed_form_with_the_same_alpha():
    rng = np.random.default_rng(4)
    truth = rng.normal(70.0, 10.0, 120)
    matrix = np.stack([truth + rng.normal(0.0, 4.0, 120) for _ in range(3)])  # 360 distinct values
    matrix[1, ::7] = np.nan
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval")
    assert krippendorff_alpha(matrix, "interval") == pytest.approx(expected, rel=1e-9)


def test_undefined_alpha_is_nan_not_an_error():
    assert math.isnan(krippendorff_alpha(np.zeros((3, 10)), "nominal"))  # nobody ever flagged the item
    assert math.isnan(krippendorff_alpha([[1.0, np.nan], [np.nan, 2.0]], "interval"))  # nothing pairable


def test_interval_alpha_ci_brackets_the_package_alpha():
    scores = _raters({"a": 0.0, "b": 1.0, "c": -1.0}, n_units=60, noise=3.0)
    _, _, matrix = score_matrix(scores)
    matrix[0, :10] = np.nan
    alpha = krippendorff_alpha(matrix)
    lo, hi = interval_alpha_ci(matrix, n=500, seed=3)
    assert lo < alpha < hi
    assert lo > 0.5 and hi <= 1.0
    assert interval_alpha_ci(matrix, n=500, seed=3) == (lo, hi)


def test_pairwise_respects_min_common():
    scores = {
        "a": {"u1": 1.0, "u2": 2.0, "u3": 3.0},
        "b": {"u1": 1.0, "u2": 2.0, "u3": 4.0},
        "c": {"u1": 3.0, "u2": 1.0},
    }
    assert [(p.rater_a, p.rater_b) for p in pairwise_agreement(scores, min_common=3)] == [("a", "b")]
    pairs = pairwise_agreement(scores, min_common=2)
    assert [(p.rater_a, p.rater_b, p.n) for p in pairs] == [("a", "b", 3), ("a", "c", 2), ("b", "c", 2)]
    assert pairs[1].mean_diff == pytest.approx(((1 - 3) + (2 - 1)) / 2)


def test_kappa_matches_a_hand_computation():
    a = [1, 1, 0, 0, 1, 0, 1, 0, 0, 0]
    b = [1, 0, 0, 0, 1, 0, 1, 1, 0, 0]
    # p_o = 8/10; both flag 4/10, so p_e = 0.4·0.4 + 0.6·0.6 = 0.52; κ = (0.8 − 0.52) / 0.48.
    assert cohen_kappa_flags(a, b) == pytest.approx(0.28 / 0.48)
    assert cohen_kappa_flags(a, a) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa_flags([0, 0, 0], [0, 0, 0]))
    with pytest.raises(ValueError):
        cohen_kappa_flags([0, 1], [0])


def test_bootstrap_ci_is_seeded_and_accepts_stats_without_axis():
    values = np.random.default_rng(2).normal(10.0, 2.0, 200)
    lo, hi = bootstrap_ci(values, seed=5)
    assert lo < values.mean() < hi
    assert hi - lo < 1.0
    assert bootstrap_ci(values, seed=5) == (lo, hi)
    mlo, mhi = bootstrap_ci(values, stat=lambda v: float(np.percentile(v, 50)), n=200, seed=5)
    assert mlo < np.median(values) < mhi
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_leave_one_out_and_bias_from_differences():
    scores = {"a": {"u": 90.0}, "b": {"u": 80.0}, "c": {"u": 70.0}, "d": {"v": 50.0}}
    diffs = leave_one_out_differences(scores, min_raters=3)
    assert diffs == {"a": {"u": 15.0}, "b": {"u": 0.0}, "c": {"u": -15.0}}
    empty = bias_from_differences("x", [])
    assert empty.n == 0 and math.isnan(empty.bias)
    assert bias_from_differences("x", [-6.0] * 5).bias == -6.0
