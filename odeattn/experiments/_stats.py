"""Rank statistics with their spread: Kendall τ-b, Spearman ρ, bootstrap 95 % CIs, noise ceiling.

* **Rank correlation** of a proxy with accuracy over n architectures: ``scipy.stats.kendalltau``
  (τ-b) and ``scipy.stats.spearmanr``; pairs with a non-finite value are dropped first.
* **Bootstrap CI** (Efron & Tibshirani 1993, percentile method): resample the *architectures*
  with replacement B times, recompute the statistic, take the 2.5 / 97.5 % quantiles of the
  finite replicates (a resample of constant ranks has no correlation and is skipped).
* **Noise ceiling**: the mean over seed pairs (a, b) of τ(acc_a, acc_b) — how well one training
  run ranks the architectures like another; no proxy can be judged beyond it. Its CI
  (:func:`noise_ceiling_ci`) resamples the architectures *and* the seed pairs in each replicate,
  so it carries the seed-pair variance a CI over architectures alone ignores.
* **Difference of two correlations** with the same accuracies (:func:`corr_diff_ci`): a paired
  bootstrap — each replicate resamples the architectures once and recomputes both correlations.
* **Partial rank correlation** of a proxy with accuracy controlling for the parameter count z
  (Spearman partial): ρ_xy·z = (ρ_xy − ρ_xz ρ_yz) / √((1 − ρ_xz²)(1 − ρ_yz²)).
* **Mean ± CI** over seeds: Student t, ``mean ± t_{1−α/2, n−1} · sd / √n`` (95 % by default;
  a family of k comparisons uses level 1 − 0.05 / k, Bonferroni).

Every bootstrap takes ``resamples`` (the index draws) so that a test can enumerate all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np
from scipy import stats

__all__ = [
    "bootstrap_ci",
    "corr_diff_ci",
    "fmt_ci",
    "kendall",
    "mean_ci",
    "noise_ceiling",
    "noise_ceiling_ci",
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


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t CI over the finite values; low = high = mean for n = 1."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if len(v) == 1:
        return m, m, m
    h = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - h, m + h


def _percentile(vals: list[float], level: float, min_ok: int) -> tuple[float, float]:
    if len(vals) < min_ok:
        return math.nan, math.nan
    lo, hi = np.quantile(vals, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


def corr_diff_ci(
    x1: Sequence[float],
    x2: Sequence[float],
    y: Sequence[float],
    stat: Callable[[Sequence[float], Sequence[float]], float] = kendall,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    resamples: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """(stat(x1, y) − stat(x2, y), low, high): paired percentile bootstrap over the rows.

    Each replicate draws the rows (architectures) once, with replacement, and recomputes both
    correlations on them; ``resamples`` (B, n) gives the draws instead (tests enumerate them).
    """
    a = np.column_stack([np.asarray(c, dtype=float) for c in (x1, x2, y)])
    diff = stat(a[:, 0], a[:, 2]) - stat(a[:, 1], a[:, 2])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (n_boot, len(a))) if resamples is None else resamples
    vals = [stat(a[i, 0], a[i, 2]) - stat(a[i, 1], a[i, 2]) for i in idx]
    vals = [v for v in vals if math.isfinite(v)]
    return (float(diff), *_percentile(vals, level, min(20, len(idx))))


def noise_ceiling_ci(
    accs: Sequence[Sequence[float]],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    resamples: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, float, float]:
    """(noise ceiling, low, high) with a two-level percentile bootstrap.

    ``accs`` holds one accuracy list per training seed (≥ 2 seeds, the same architectures). Each
    replicate draws the architectures with replacement AND the seed pairs (from the C(S, 2)
    pairs, with replacement) and averages τ over the drawn pairs on the drawn architectures.
    ``resamples`` = (rows (B, n), pairs (B, P)) gives the draws (pair k is the k-th of
    ``itertools.combinations(range(S), 2)``).
    """
    tau = noise_ceiling(*accs)
    a = np.asarray(accs, dtype=float)  # (S, n)
    pairs = list(combinations(range(a.shape[0]), 2))
    if resamples is None:
        rng = np.random.default_rng(seed)
        rows = rng.integers(0, a.shape[1], (n_boot, a.shape[1]))
        picks = rng.integers(0, len(pairs), (n_boot, len(pairs)))
    else:
        rows, picks = resamples
    vals = []
    for r, p in zip(rows, picks, strict=True):
        per_pair = np.array([kendall(a[i, r], a[j, r]) for i, j in pairs])
        taus = per_pair[np.asarray(p)]
        taus = taus[np.isfinite(taus)]
        if len(taus):
            vals.append(float(taus.mean()))
    return (tau, *_percentile(vals, level, min(20, len(rows))))


def fmt_ci(value: float, lo: float, hi: float, digits: int = 2) -> str:
    """``0.41 [0.12, 0.63]``; an undefined value prints ``n/a`` (never ``nan``)."""
    if not math.isfinite(value):
        return "n/a"
    ci = f" [{lo:.{digits}f}, {hi:.{digits}f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
    return f"{value:.{digits}f}{ci}"
