"""The scale benchmark's figure: odeattn's own time per trial (CPU of the worker process, and
wall) and the sampler's, against the trial number, one line per cell (storage, sampler, workers,
commit) of ``bench_scale.py`` JSON files. CPU time is the steadier measure on a shared machine:
wall time per trial follows the machine's load as much as the code."""

from __future__ import annotations

import json
from pathlib import Path

PANELS = (
    ("odeattn_cpu_ms_per_trial", "odeattn's own CPU time per trial (worker process)"),
    ("odeattn_ms_per_trial", "odeattn's own wall time per trial"),
    ("sampler_ms_per_trial", "the sampler's wall time per trial"),
)


def _label(d: dict) -> str:
    c = d["cell"]
    label = f"{c['storage']}, {c['sampler']}, {c['workers']} w, n={c['trials']} @{d['commit']}"
    label += ", replicates 2" if c.get("replicates", 1) > 1 else ""
    return label + (f", history {c['history']}" if c.get("history") else "")


def plot(files: list[Path], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5), dpi=100, sharex=True)
    for i, f in enumerate(files):
        d = json.loads(f.read_text())
        x = [(lo + hi) / 2 for lo, hi in d["buckets"]]
        style = dict(marker="o", ms=3, color=f"C{i % 10}", label=_label(d))
        for ax, (key, _) in zip(axes, PANELS, strict=True):
            ax.plot(x, d[key], **style)
    for ax, (_, title) in zip(axes, PANELS, strict=True):
        ax.set(title=title, xlabel="trial number", ylabel="ms (median over the bucket)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    fig.suptitle(
        "bench_scale.py: instant trials through odeattn's worker loop; a shared 2-vCPU VM "
        "(load average in benchmarks/README.md): wall time follows the load",
        fontsize=9,
    )
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
