"""Issue 21 §5: the pre-registered statistics against known values and brute-force enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from odeattn.experiments import (
    bootstrap_ci,
    corr_diff_ci,
    mean_ci,
    noise_ceiling,
    noise_ceiling_ci,
    verdict,
)


def _tau(x, y):
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return stats.kendalltau(x, y).statistic


def test_corr_diff_ci_is_the_exact_bootstrap_by_enumeration():
    """Every one of the 5^5 resamples of 5 architectures, the CI recomputed by hand."""
    x1 = np.array([0.3, 0.1, 0.4, 0.15, 0.9])
    x2 = np.array([2.0, 7.0, 1.0, 8.0, 2.5])
    y = np.array([0.80, 0.70, 0.95, 0.60, 0.90])
    every = np.array(list(itertools.product(range(5), repeat=5)))
    vals = [_tau(x1[i], y[i]) - _tau(x2[i], y[i]) for i in every]
    vals = [v for v in vals if math.isfinite(v)]
    lo, hi = np.quantile(vals, [0.025, 0.975])
    est = _tau(x1, y) - _tau(x2, y)
    got = corr_diff_ci(x1, x2, y, resamples=every)
    assert got == pytest.approx((est, lo, hi), abs=1e-12)
    # by hand: x1 vs y 8 concordant, 2 discordant of 10 pairs; x2 vs y 1 and 9
    assert est == pytest.approx(0.6 - (-0.8))


def test_corr_diff_ci_of_a_perfect_and_a_reversed_proxy_is_exactly_two():
    y = np.arange(12.0)
    d, lo, hi = corr_diff_ci(y * 3 + 1, -y, y, n_boot=300)
    assert (d, lo, hi) == pytest.approx((2.0, 2.0, 2.0))
    d0, lo0, hi0 = corr_diff_ci(y, y, y, n_boot=300)  # a proxy against itself: exactly 0
    assert (d0, lo0, hi0) == (0.0, 0.0, 0.0)


def _ceiling_case() -> list[np.ndarray]:
    """Seeds 0 and 1 rank six architectures alike, seed 2 reverses them: τ = 1, −1, −1."""
    a = np.arange(6.0)
    return [a, a + 0.5, a[::-1].copy()]


def test_noise_ceiling_ci_carries_the_seed_pair_variance():
    accs = _ceiling_case()
    assert noise_ceiling(*accs) == pytest.approx(-1 / 3)
    # resampling architectures only: every replicate is -1/3 — the CI the reviewer faulted
    assert bootstrap_ci(accs, noise_ceiling, n_boot=200) == pytest.approx((-1 / 3, -1 / 3))
    # all 27 draws of 3 pairs from {1, -1, -1} (architectures kept): the mean of the draws is
    # -1 (8 of 27), -1/3 (12), 1/3 (6), 1 (1); numpy's quantiles of those 27 values
    rows = np.tile(np.arange(6), (27, 1))
    picks = np.array(list(itertools.product(range(3), repeat=3)))
    tau, lo, hi = noise_ceiling_ci(accs, resamples=(rows, picks))
    assert tau == pytest.approx(-1 / 3)
    assert lo == pytest.approx(-1.0) and hi == pytest.approx(1 / 3 + 0.35 * (2 / 3))
    _, lo_r, hi_r = noise_ceiling_ci(accs, n_boot=2000)  # random draws of both
    assert lo_r == pytest.approx(-1.0) and hi_r >= 1 / 3 - 1e-9


def test_noise_ceiling_ci_with_identical_seeds_is_one():
    a = np.array([0.1, 0.5, 0.3, 0.9, 0.7])
    assert noise_ceiling_ci([a, a, a], n_boot=200) == pytest.approx((1.0, 1.0, 1.0))


def test_mean_ci_at_a_bonferroni_level_is_wider_by_the_t_quantiles():
    v = [0.01, -0.02, 0.03, 0.00, 0.015]
    m, lo, hi = mean_ci(v)
    m2, lo2, hi2 = mean_ci(v, level=1 - 0.05 / 6)
    ratio = stats.t.ppf(1 - 0.025 / 6, 4) / stats.t.ppf(0.975, 4)
    assert m2 == m and (hi2 - lo2) == pytest.approx(ratio * (hi - lo))


@pytest.mark.parametrize(
    "estimate, ci, threshold, rule, testable, word",
    [
        (0.05, (0.01, 0.09), 0.0, "above", True, "held"),
        (0.05, (-0.01, 0.09), 0.0, "above", True, "not held"),  # the CI contains 0
        (-0.05, (-0.09, -0.01), 0.0, "above", True, "not held"),
        (0.005, (-0.025, 0.030), -0.01, "above", True, "not held"),  # "no loss" of issue 21
        (0.0, (-0.008, 0.009), -0.01, "above", True, "held"),  # no loss: CI above -1 point
        (0.04, (0.02, 0.06), 0.1, "below", True, "held"),
        (0.0, (-0.004, 0.006), 0.01, "within", True, "held"),
        (0.0, (-0.004, 0.016), 0.01, "within", True, "not held"),
        (0.05, (0.01, 0.09), 0.0, "above", False, "untestable here"),  # a precondition failed
        (math.nan, (math.nan, math.nan), 0.0, "above", True, "untestable here"),
        (0.1, (math.nan, math.nan), 0.0, "above", True, "untestable here"),
    ],
)
def test_verdict_words(estimate, ci, threshold, rule, testable, word):
    assert verdict(estimate, ci, threshold, rule, testable=testable) == word


def test_verdict_rejects_unknown_rules_and_bad_intervals():
    with pytest.raises(ValueError, match="did you mean 'above'"):
        verdict(0.1, (0, 1), 0, "abov")
    with pytest.raises(ValueError, match="low <= high"):
        verdict(0.1, (1, 0), 0, "above")
    with pytest.raises(ValueError, match="half-width"):
        verdict(0.1, (0, 1), 0, "within")
