"""The scale benchmark's figure: odeattn's own time and the sampler's time per trial against the
trial number, one line per cell (storage, sampler, workers) of ``bench_scale.py`` JSON files."""

from __future__ import annotations

import json
from pathlib import Path


def plot(files: list[Path], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6), dpi=110, sharex=True)
    for i, f in enumerate(files):
        d = json.loads(f.read_text())
        c = d["cell"]
        x = [(lo + hi) / 2 for lo, hi in d["buckets"]]
        label = f"{c['storage']}, {c['sampler']}, {c['workers']} w, n={c['trials']}"
        label += ", replicates 2" if c.get("replicates", 1) > 1 else ""
        label += f", history {c['history']}" if c.get("history") else ""
        style = dict(marker="o", ms=3, color=f"C{i % 10}", label=label)
        a1.plot(x, d["odeattn_ms_per_trial"], **style)
        a2.plot(x, d["sampler_ms_per_trial"], **style)
    a1.set(title="odeattn's own time per trial (wall, sampler excluded)", ylabel="ms (median)")
    a2.set(title="the sampler's time per trial (wall)", ylabel="ms (median)")
    for ax in (a1, a2):
        ax.set_xlabel("trial number")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    a1.legend(fontsize=7)
    fig.suptitle(
        "bench_scale.py: median per bucket of trial numbers (2-core shared VM, see README)",
        fontsize=9,
    )
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
