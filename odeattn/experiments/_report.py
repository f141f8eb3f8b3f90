"""The benchmark's report: per-proxy rank correlations with CIs, the noise ceiling, files, figure.

For each proxy column of the benchmark rows: Kendall τ and Spearman ρ against the mean final
accuracy with bootstrap 95 % CIs over architectures, the Spearman partial correlation with
accuracy controlling for the parameter count, and the difference of its τ from the parameter
count's τ with a paired bootstrap CI (the same resampled architectures for both); the noise
ceiling (mean Kendall τ between two training seeds' accuracies, with a CI that resamples seed
pairs and architectures) sits beside them. Written: ``values.csv`` (every stored value),
``correlations.csv``, ``summary.json`` and ``scatter.png`` (one panel per proxy); every file
carries the provenance (the CSVs as a first ``# provenance: {…}`` line: ``pandas.read_csv(…,
comment="#")``).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from odeattn.experiments._provenance import provenance
from odeattn.experiments._stats import (
    bootstrap_ci,
    corr_diff_ci,
    kendall,
    noise_ceiling_ci,
    partial_spearman,
    spearman,
)
from odeattn.search.trial import json_safe

__all__ = ["ceiling", "correlations", "write_report"]


def _col(rows: list[dict], key: str) -> list[float]:
    return [float(r[key]) for r in rows]


def _n_finite(*cols: list[float]) -> int:
    return sum(all(math.isfinite(c[i]) for c in cols) for i in range(len(cols[0])))


def correlations(rows: list[dict], proxies: list[str], n_boot: int = 1000) -> list[dict]:
    """One dict per proxy: n, tau, rho, partial (vs params), d_params (τ − τ of params) and their
    ``_lo`` / ``_hi`` CIs."""
    acc, par = _col(rows, "mean_accuracy"), _col(rows, "params")
    out = []
    for name in proxies:
        x = _col(rows, name)
        rec: dict[str, Any] = {"proxy": name, "n": _n_finite(x, acc)}
        for key, fn, cols in (
            ("tau", kendall, (x, acc)),
            ("rho", spearman, (x, acc)),
            ("partial", partial_spearman, (x, acc, par)),
        ):
            rec[key] = fn(*cols)
            rec[f"{key}_lo"], rec[f"{key}_hi"] = bootstrap_ci(cols, fn, n_boot=n_boot)
        d = corr_diff_ci(x, par, acc, n_boot=n_boot) if name != "params" else (math.nan,) * 3
        rec["d_params"], rec["d_params_lo"], rec["d_params_hi"] = d
        out.append(rec)
    return out


def ceiling(rows: list[dict], seeds: int, n_boot: int = 1000) -> dict[str, float]:
    """Noise ceiling: mean pairwise Kendall τ of the seeds' accuracies, its CI resampling seed
    pairs and architectures, n, seeds."""
    accs = [_col(rows, f"acc@seed{s}") for s in range(seeds)]
    tau, lo, hi = noise_ceiling_ci(accs, n_boot=n_boot)
    return {"tau": tau, "tau_lo": lo, "tau_hi": hi, "n": len(rows), "seeds": seeds}


def _csv(path: Path, rows: list[dict], prov: dict[str, Any]) -> None:
    keys = list(rows[0]) if rows else []
    with path.open("w", newline="") as f:
        f.write(f"# provenance: {json.dumps(prov)}\n")
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, dict) else v for k, v in r.items()})


def _scatter(path: Path, rows: list[dict], corrs: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 4
    nrow = math.ceil(len(corrs) / cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(3.2 * cols, 2.8 * nrow), squeeze=False)
    acc = _col(rows, "mean_accuracy")
    for ax, c in zip(axes.flat, corrs, strict=False):
        x = [v for v in _col(rows, c["proxy"]) if math.isfinite(v)]
        ax.scatter(_col(rows, c["proxy"]), acc, s=12)
        if x and min(x) > 0 and max(x) > 100 * min(x):  # positive over decades: log axis
            ax.set_xscale("log")
        tau = "n/a" if not math.isfinite(c["tau"]) else f"{c['tau']:.2f}"
        ax.set_title(f"{c['proxy']}  τ={tau} (n={c['n']})", fontsize=9)
        ax.set_ylabel("mean val. accuracy", fontsize=8)
    for ax in list(axes.flat)[len(corrs) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    out: str | Path, rows: list[dict], corrs: list[dict], ceil: dict, runs: list[dict] | None = None
) -> None:
    """values.csv, correlations.csv, summary.json and scatter.png under ``out``; ``runs``: the
    distinct provenance of the trained architectures (see ``_bench.trial_provenance``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance()
    _csv(out / "values.csv", rows, prov)
    _csv(out / "correlations.csv", corrs, prov)
    summary = {
        "provenance": prov,
        "runs": runs or [],
        "noise_ceiling": ceil,
        "correlations": corrs,
        "rows": rows,
    }
    (out / "summary.json").write_text(json.dumps(json_safe(summary), indent=1))
    _scatter(out / "scatter.png", rows, corrs)
