"""Stiffness plots in the style of StepNet (ICCV 2023), written as PNG with matplotlib's Agg canvas.

- :func:`plot_level_maps`: δ(M1, M2) heat maps side by side (Fig. 2), or p̂(M1, M2) (Fig. 6);
- :func:`plot_nsi_depth`: mean NSI along depth with a quantile band, stage boundaries marked
  (Fig. 3);
- :func:`plot_tns_accuracy`: TNS against accuracy with Kendall's τ and Spearman's ρ (Fig. 7).

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot state), so plotting is
headless and safe in worker processes. Every function returns the path it wrote.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

__all__ = ["plot_level_maps", "plot_nsi_depth", "plot_tns_accuracy", "rank_correlations"]


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_level_maps(
    panels: Mapping[str, tuple[Any, Any, Any]],
    path: str | os.PathLike,
    *,
    label: str = "δ(M1, M2)",
    title: str | None = None,
) -> Path:
    """One heat map per model: ``panels[name] = (m1 (G1,), m2 (G2,), values (G1, G2))``."""
    if not panels:
        raise ValueError("`panels` must hold at least one (m1, m2, values) entry, but got none")
    cols = min(len(panels), 4)
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(3.6 * cols + 0.8, 3.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for ax, (name, (m1, m2, values)) in zip(axes, panels.items()):
        m1, m2, values = np.asarray(m1), np.asarray(m2), np.asarray(values)
        if values.shape != (m1.size, m2.size):
            raise ValueError(
                f"panel {name!r}: `values` must have shape (len(m1), len(m2)) = "
                f"{(m1.size, m2.size)}, but got {values.shape}"
            )
        image = ax.pcolormesh(m2, m1, values, shading="nearest", vmin=0.0, vmax=1.0, cmap="viridis")
        ax.set(title=name, xlabel="M2 (absolute threshold)", ylabel="M1 (relative threshold)")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.colorbar(image, ax=list(axes[: len(panels)]), label=label)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_nsi_depth(
    curves: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    title: str = "NSI along depth",
    log: bool = False,
) -> Path:
    """Mean NSI per measured block, one line per model.

    ``curves[name]`` has ``mean`` (L,), ``stage`` (L,) and optionally ``low``/``high`` (L,) for a
    band (e.g. the 25 % and 75 % quantiles). Dotted lines mark where a new stage starts.
    """
    if not curves:
        raise ValueError("`curves` must hold at least one model, but got none")
    fig = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for name, c in curves.items():
        mean, stage = np.asarray(c["mean"], dtype=float), np.asarray(c["stage"])
        x = np.arange(mean.size, dtype=float)
        cuts = np.flatnonzero(stage[1:] != stage[:-1]) + 1  # first index of each later stage

        # a NaN between stages breaks the line there: stages are separate trajectories
        def gap(v: Any, cuts: np.ndarray = cuts) -> np.ndarray:
            return np.insert(np.asarray(v, dtype=float), cuts, np.nan)

        (line,) = ax.plot(gap(x), gap(mean), marker="o", markersize=3, label=name)
        if c.get("low") is not None and c.get("high") is not None:
            ax.fill_between(
                gap(x), gap(c["low"]), gap(c["high"]), color=line.get_color(), alpha=0.2
            )
        for b in cuts - 0.5:
            ax.axvline(b, color="grey", linestyle=":", linewidth=0.8)
    ax.set(title=title, xlabel="measured block (first block of each stage excluded)", ylabel="NSI")
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return _save(fig, path)


def rank_correlations(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Kendall's τ and Spearman's ρ with their p-values (NaN when undefined, e.g. n < 3)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"`x` and `y` must be 1-D of equal length, but got {x.shape} and {y.shape}"
        )
    nan = float("nan")
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"kendall": nan, "kendall_p": nan, "spearman": nan, "spearman_p": nan, "n": x.size}
    k, s = stats.kendalltau(x, y), stats.spearmanr(x, y)
    return {
        "kendall": float(k.statistic),
        "kendall_p": float(k.pvalue),
        "spearman": float(s.statistic),
        "spearman_p": float(s.pvalue),
        "n": int(x.size),
    }


def _corr_text(corr: dict[str, float]) -> str:
    """The title line: τ and ρ with n, or why they are undefined (never "nan")."""
    if not np.isfinite(corr["kendall"]):
        return f"rank correlation undefined (n = {corr['n']}: needs n ≥ 3 and non-constant values)"
    return (
        f"Kendall τ = {corr['kendall']:.3f}, Spearman ρ = {corr['spearman']:.3f} (n = {corr['n']})"
    )


def plot_tns_accuracy(
    names: Sequence[str],
    tns: Sequence[float],
    accuracy: Sequence[float],
    path: str | os.PathLike,
    *,
    title: str = "TNS vs accuracy",
) -> tuple[Path, dict[str, float]]:
    """Scatter of accuracy against TNS, titled with the rank correlations; returns them too."""
    corr = rank_correlations(tns, accuracy)
    fig = Figure(figsize=(5.0, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.scatter(tns, accuracy)
    for n, t, a in zip(names, tns, accuracy):
        ax.annotate(n, (t, a), textcoords="offset points", xytext=(4, 4), fontsize="small")
    ax.set(
        title=f"{title}\n{_corr_text(corr)}",
        xlabel="TNS",
        ylabel="accuracy",
    )
    return _save(fig, path), corr
