"""Rank statistics with their spread: Kendall τ-b, Spearman ρ, bootstrap 95 % CIs, noise ceiling.

* **Rank correlation** of a proxy with accuracy over n architectures: ``scipy.stats.kendalltau``
  (τ-b) and ``scipy.stats.spearmanr``; pairs with a non-finite value are dropped first.
* **Bootstrap CI** (Efron & Tibshirani 1993, percentile method): resample the *architectures*
  with replacement B times, recompute the statistic, take the 2.5 / 97.5 % quantiles of the
  finite replicates (a resample of constant ranks has no correlation and is skipped).
* **Noise ceiling**: the mean over seed pairs (a, b) of τ(acc_a, acc_b) — how well one training
  run ranks the architectures like another; no proxy can be judged beyond it.
* **Partial rank correlation** of a proxy with accuracy controlling for the parameter count z
  (Spearman partial): ρ_xy·z = (ρ_xy − ρ_xz ρ_yz) / √((1 − ρ_xz²)(1 − ρ_yz²)).
* **Mean ± 95 % CI** over seeds: Student t, ``mean ± t_{0.975, n−1} · sd / √n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np
from scipy import stats

__all__ = [
    "bootstrap_ci",
    "fmt_ci",
    "kendall",
    "mean_ci",
    "noise_ceiling",
    "partial_spearman",
    "spearman",
]

Stat = Callable[[np.ndarray], float]


def _finite_rows(*cols: Sequence[float]) -> np.ndarray:
    a = np.column_stack([np.asarray(c, dtype=float) for c in cols])
    return a[np.all(np.isfinite(a), axis=1)]


def _defined(a: np.ndarray) -> bool:
    return len(a) >= 3 and all(np.ptp(a[:, j]) > 0 for j in range(a.shape[1]))


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall τ-b of the finite pairs; NaN when undefined (fewer than 3 pairs or a constant)."""
    a = _finite_rows(x, y)
    return float(stats.kendalltau(a[:, 0], a[:, 1]).statistic) if _defined(a) else math.nan


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman ρ of the finite pairs; NaN when undefined."""
    a = _finite_rows(x, y)
    return float(stats.spearmanr(a[:, 0], a[:, 1]).statistic) if _defined(a) else math.nan


def partial_spearman(x: Sequence[float], y: Sequence[float], z: Sequence[float]) -> float:
    """Spearman partial correlation of x and y controlling for z; NaN when undefined."""
    a = _finite_rows(x, y, z)
    if not _defined(a):
        return math.nan
    rxy, rxz, ryz = (spearman(a[:, i], a[:, j]) for i, j in ((0, 1), (0, 2), (1, 2)))
    den = math.sqrt(max((1 - rxz**2) * (1 - ryz**2), 0.0))
    return (rxy - rxz * ryz) / den if den > 1e-12 else math.nan


def bootstrap_ci(
    cols: Sequence[Sequence[float]],
    stat: Callable[..., float],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile 95 % CI of ``stat(*cols)`` resampling the rows (architectures); NaNs if < 20 ok."""
    a = np.column_stack([np.asarray(c, dtype=float) for c in cols])
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(a), len(a))
        v = stat(*(a[idx, j] for j in range(a.shape[1])))
        if math.isfinite(v):
            vals.append(v)
    if len(vals) < 20:
        return math.nan, math.nan
    lo, hi = np.quantile(vals, [0.025, 0.975])
    return float(lo), float(hi)


def noise_ceiling(*accs: Sequence[float]) -> float:
    """Mean Kendall τ between the accuracies of every pair of training seeds (≥ 2 seeds)."""
    if len(accs) < 2:
        raise ValueError(f"`accs` must hold at least 2 seeds' accuracies, but got {len(accs)}")
    taus = [kendall(a, b) for a, b in combinations(accs, 2)]
    taus = [t for t in taus if math.isfinite(t)]
    return float(np.mean(taus)) if taus else math.nan


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): Student-t 95 % CI over the finite values; low = high = mean for n = 1."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if len(v) == 1:
        return m, m, m
    h = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - h, m + h


def fmt_ci(value: float, lo: float, hi: float, digits: int = 2) -> str:
    """``0.41 [0.12, 0.63]``; an undefined value prints ``n/a`` (never ``nan``)."""
    if not math.isfinite(value):
        return "n/a"
    ci = f" [{lo:.{digits}f}, {hi:.{digits}f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
    return f"{value:.{digits}f}{ci}"
