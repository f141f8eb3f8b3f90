"""Figures of the evidence: bars with 95 % CIs, p̂(M) heat maps, curves mean ± CI against time,
scatters of a score against accuracy.

matplotlib is imported inside each function (an optional, heavy backend), with the Agg backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from odeattn.experiments._stats import kendall, mean_ci

__all__ = ["bars", "curves_plot", "heatmaps", "scatters"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bars(path: Path, groups: dict[str, dict[str, list[float]]], ylabel: str, title: str) -> None:
    """One panel per group; per variant its mean (a bar) with 95 % CI whiskers and each seed a
    dot. The y axis spans the data (not 0): accuracies near 1 differ in the third digit."""
    plt = _plt()
    n = max(len(v) for v in groups.values())
    title += " (mean, 95 % CI over seeds)"
    width = max(4.2 * len(groups), (0.75 * n + 1.5) * len(groups), 0.085 * len(title))  # inches
    fig, axes = plt.subplots(
        1, len(groups), figsize=(width, 3.6), squeeze=False, layout="constrained"
    )
    for ax, (gname, variants) in zip(axes[0], groups.items(), strict=True):
        for i, vals in enumerate(variants.values()):
            m, lo, hi = mean_ci(vals)
            ax.hlines(m, i - 0.3, i + 0.3, color=f"C{i}", lw=3)
            ax.errorbar(i, m, yerr=[[m - lo], [hi - m]], color="k", capsize=4)
            ax.scatter(
                np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, s=9, c="k"
            )
        ax.set_xticks(range(len(variants)), list(variants), rotation=20, fontsize=8)
        ax.set_title(gname, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)  # 10 pt: about 0.085 inch a character
    fig.savefig(path, dpi=110)
    plt.close(fig)


def heatmaps(
    path: Path, maps: dict[str, np.ndarray], m1: np.ndarray, m2: np.ndarray, title: str
) -> None:
    """p̂(M1, M2) per variant (mean over seeds); the 10 % contour drawn."""
    plt = _plt()
    fig, axes = plt.subplots(
        1, len(maps), figsize=(3.8 * len(maps), 3.4), squeeze=False, layout="constrained"
    )
    for ax, (name, grid) in zip(axes[0], maps.items(), strict=True):
        im = ax.imshow(
            grid.T,
            origin="lower",
            extent=(m1[0], m1[-1], m2[0], m2[-1]),
            vmin=0,
            vmax=1,
            aspect="auto",
        )
        ax.contour(m1, m2, grid.T, levels=[0.1], colors="w", linewidths=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("M1", fontsize=8)
        ax.set_ylabel("M2", fontsize=8)
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="p̂")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves_plot(
    path: Path, t: np.ndarray, arms: dict[str, dict[str, np.ndarray]], title: str
) -> None:
    """Best-so-far accuracy and hypervolume against wall time: mean ± 95 % CI over seeds per arm."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (key, label) in enumerate(
        (("best", "best-so-far val. accuracy"), ("hv", "hypervolume (acc, log10 params)"))
    ):
        ax = axes[k]
        for i, (arm, c) in enumerate(arms.items()):
            full = np.isfinite(c[key]).all(0)  # from when every seed has trained a network
            stats_ = np.array([mean_ci(col) for col in c[key].T[full]]).reshape(-1, 3)
            ax.plot(t[full], stats_[:, 0], color=f"C{i}", label=f"{arm} (n={c[key].shape[0]})")
            ax.fill_between(t[full], stats_[:, 1], stats_[:, 2], color=f"C{i}", alpha=0.15)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.suptitle(title + " (mean, 95 % CI over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scatters(
    path: Path, panels: dict[str, tuple[list[float], list[float]]], xlabel: str, ylabel: str
) -> None:
    """One scatter panel per ``name: (x, y)``, titled with its Kendall τ-b."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2), squeeze=False)
    for ax, (name, (x, y)) in zip(axes[0], panels.items(), strict=True):
        ax.scatter(x, y, s=12)
        ax.set_title(f"{name}: τ = {kendall(x, y):.2f}", fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
