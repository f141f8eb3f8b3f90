"""The efficiency study's summary: final values per arm, paired differences, curves, provenance.

``summary.json`` holds, per study kind, every arm's best accuracy and hypervolume at T per
sampler seed, the networks trained per run, and the differences paired by sampler seed (every
arm − none, every proxy arm − random) as mean [95 % CI]; beside them the provenance of this
summary and the distinct provenance of the stored runs.

Best-so-far is a maximum of noisy values, biased upwards in the arms that train more. So the best
architecture of every single-objective run (the first to reach the run's best accuracy by T) is
retrained with each of the fresh seeds ``cfg.fresh`` (the same recipe and epochs, one torch
thread, cached under ``<out>/standalone`` as issue 19's retrainings are): ``retrained`` holds the
mean over the fresh seeds per run, and ``paired["retrained"]`` the same differences of it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console

from odeattn.experiments._bench import bench_study
from odeattn.experiments._efficiency import (
    EffConfig,
    bench_config,
    curves,
    run_efficiency,
    run_provenance,
)
from odeattn.experiments._oneshot_runs import StandaloneCache
from odeattn.experiments._plots import bars, curves_plot
from odeattn.experiments._provenance import provenance
from odeattn.experiments._stats import fmt_ci, mean_ci
from odeattn.search.trial import json_safe

__all__ = ["best_arch", "efficiency_summary", "paired_arms", "retrain_bests"]


def paired_arms(final: dict[str, list[float]]) -> dict[str, tuple[float, float, float]]:
    """Differences paired by sampler seed: every arm − none, and every proxy arm − random."""
    pairs = [(a, "none") for a in final if a != "none"]
    pairs += [(a, "random") for a in final if a not in ("none", "random")]
    return {
        f"{a} - {b}": mean_ci([x - y for x, y in zip(final[a], final[b], strict=True)])
        for a, b in pairs
        if b in final
    }


def best_arch(events: list[dict], seconds: float) -> dict | None:
    """The architecture of the first candidate that reached the run's best accuracy by T."""
    seen = [e for e in events if e["t"] <= seconds and math.isfinite(e["acc"])]
    return max(seen, key=lambda e: e["acc"])["arch"] if seen else None  # max: the first of ties


def retrain_bests(cfg: EffConfig, events: dict[str, list[list[dict]]]) -> dict[str, list[float]]:
    """Per arm and sampler seed: the mean accuracy of its best architecture over ``cfg.fresh``."""
    cache = StandaloneCache(cfg.out, bench_study(bench_config(cfg)), cfg.jobs)
    bests = {a: [best_arch(ev, cfg.seconds) for ev in evs] for a, evs in events.items()}
    cache.fill((b, f) for bs in bests.values() for b in bs if b is not None for f in cfg.fresh)
    return {a: [cache.mean_accuracy(b, cfg.fresh) for b in bs] for a, bs in bests.items()}


def _print_kind(console: Console, final: dict, trained: dict, diffs: dict) -> None:
    for arm, f in final.items():
        console.print(
            f"{arm:>10}: best val. accuracy at T {fmt_ci(*mean_ci(f['best']), digits=3)}, "
            f"hypervolume {fmt_ci(*mean_ci(f['hv']), digits=3)}, "
            f"trained per run {fmt_ci(*mean_ci(trained[arm]), digits=1)}"
        )
    labels = {"best": "best accuracy", "hv": "hypervolume", "retrained": "retrained best"}
    for m, label in labels.items():
        for pair, ci in diffs.get(m, {}).items():
            noise = " — within noise" if ci[1] <= 0 <= ci[2] else ""
            console.print(f"{pair:>18}: {label} {fmt_ci(*ci, digits=3)} (paired){noise}")


def efficiency_summary(cfg: EffConfig, console: Console) -> dict:
    """Run (or resume) the study, print and store ``summary.json`` and the figures; the summary."""
    runs = run_efficiency(cfg, tick=lambda: console.print(".", end=""))
    console.print()
    every = [
        e["params"] for arms in runs.values() for evs in arms.values() for ev in evs for e in ev
    ]
    ref_cost = 1.1 * math.log10(max(every, default=10.0))  # one box for every study and arm
    summary: dict = {"provenance": provenance(), "runs": run_provenance(cfg)}
    summary |= {"config": cfg.__dict__, "ref_cost": ref_cost}
    for kind, events in runs.items():
        c = {arm: curves(evs, cfg.seconds, ref_cost) for arm, evs in events.items()}
        title = f"{kind}-objective TPE, {cfg.seeds} seeds, {cfg.seconds:g} s each"
        curves_plot(Path(cfg.out) / f"efficiency_{kind}.png", c[cfg.arms[0]]["t"], c, title)
        console.print(f"[bold]{kind}-objective TPE[/] (n = {cfg.seeds} sampler seeds)")
        final = {
            arm: {"best": list(cc["best"][:, -1]), "hv": list(cc["hv"][:, -1])}
            for arm, cc in c.items()
        }
        trained = {arm: [len(ev) for ev in events[arm]] for arm in c}
        diffs = {m: paired_arms({a: f[m] for a, f in final.items()}) for m in ("best", "hv")}
        entry = {"final": final, "trained": trained, "paired": diffs}
        if kind == "single" and cfg.fresh:
            console.print(f"retraining each run's best with seeds {list(cfg.fresh)}")
            entry["retrained"] = retrain_bests(cfg, events)
            diffs["retrained"] = paired_arms(entry["retrained"])
            title = (
                f"best of each single run retrained, seeds {list(cfg.fresh)}; T = {cfg.seconds:g} s"
            )
            groups = {"retrained accuracy": entry["retrained"]}
            bars(Path(cfg.out) / "efficiency_retrained.png", groups, "accuracy", title)
        _print_kind(console, final, trained, diffs)
        summary[kind] = entry
    (Path(cfg.out) / "summary.json").write_text(json.dumps(json_safe(summary), indent=1))
    console.print(f"files: {cfg.out}/efficiency_*.png, summary.json, standalone/")
    return summary
