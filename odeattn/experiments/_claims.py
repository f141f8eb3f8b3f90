"""StepNet's claims (issue 14 §4, re-defined by issue 21), each one resumable function of a context.

1. ``attention_tns`` — attention networks show larger TNS than the plain network (StepNet Fig. 2),
   under the step-normalised NSI (Eq. 4) and the finite-difference NSI; plain / SE / ECA / StepNet.
2. ``stiff_blocks`` — few blocks carry the stiffness: p̂(M) ≤ 10 % for most M (StepNet Fig. 6).
3. ``tns_accuracy`` — TNS rank-correlates with accuracy (StepNet Fig. 7): over the claim-1
   networks, and in the proxy benchmark over a space of deep networks (``evidence_deep.yaml``).
6. ``stepnet_vs_se`` — StepNet's adaptor beats SE at (about) equal parameters (StepNet Table 1).

All at a depth where TNS measures something (8 blocks a stage, 7 measured: the first block of a
stage is not), so a stage is never a constant; a run that is not deep enough makes its tests
"untestable here". Each test is the one of :data:`~._plan.PLAN`; the mean gate Δt of every block
is reported beside the TNS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from odeattn.experiments._bench import BenchConfig, open_study, proxy_names, run_benchmark
from odeattn.experiments._bench import trial_provenance as bench_provenance
from odeattn.experiments._plan import combine, judge
from odeattn.experiments._plots import bars, heatmaps
from odeattn.experiments._report import ceiling, correlations, write_report
from odeattn.experiments._runs import M1_GRID, M2_GRID
from odeattn.experiments._sizes import Ctx, Size, paired, provenances
from odeattn.experiments._stats import bootstrap_ci, kendall, mean_ci
from odeattn.stiffness import MIN_MEASURED

__all__ = [
    "attention_tns",
    "attention_variants",
    "claim_result",
    "stepnet_vs_se",
    "stiff_blocks",
    "tns_accuracy",
]

ATTENTION = ("plain", "se", "eca", "stepnet")


def attention_variants(size: Size) -> dict[str, dict[str, Any]]:
    """plain / SE / ECA / StepNet (every block) at the claims' depth."""
    kw = size.deep_kw()
    return {v: {**kw, "adaptor": "none" if v == "plain" else v} for v in ATTENTION}


def deep_enough(runs: dict[str, list[dict[str, Any]]]) -> bool:
    """Every stage of every run has at least MIN_MEASURED measured blocks."""
    return all(
        min(r["measured_blocks"].values(), default=0) >= MIN_MEASURED
        for recs in runs.values()
        for r in recs
    )


def _gates(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean gate Δt of every block over the seeds (names and stages of seed 0)."""
    g = np.array([[b["gate"] for b in r["gates"]] for r in recs]).mean(0)
    return [{**b, "gate": float(v)} for b, v in zip(recs[0]["gates"], g, strict=True)]


def claim_result(claim: str, tests: list[dict], runs: dict, **extra: Any) -> dict[str, Any]:
    word = combine(claim, tests)
    text = "; ".join(f"{t['id']}: {t['verdict']}" for t in tests)
    return (
        {"verdict": word, "held": word == "held", "tests": tests, "summary": text}
        | extra
        | {"runs_provenance": provenances(runs)}
    )


def attention_tns(ctx: Ctx) -> dict[str, Any]:
    runs = ctx.runs(attention_variants(ctx.size))
    ok = deep_enough(runs)
    tns = {
        k: {v: [r[f"tns_{k}"] for r in recs] for v, recs in runs.items()} for k in ("step", "fd")
    }
    tests = [
        judge("attention_tns", f"{a}-plain {k}", paired(tns[k][a], tns[k]["plain"]), testable=ok)
        for k in ("step", "fd")
        for a in ATTENTION[1:]
    ]
    groups = {f"TNS ({k} NSI)": tns[k] for k in tns}
    bars(ctx.out / "attention_tns.png", groups, "TNS", f"TNS, {ctx.size.seeds} seeds")
    return claim_result(
        "attention_tns",
        tests,
        runs,
        tns=tns,
        gates={v: _gates(recs) for v, recs in runs.items()},
        measured_blocks=runs["plain"][0]["measured_blocks"],
    )


def stiff_blocks(ctx: Ctx) -> dict[str, Any]:
    runs = ctx.runs(attention_variants(ctx.size))
    ok = deep_enough(runs)
    share, p00, tests = {}, {}, []
    for k in ("step", "fd"):
        grids = {v: np.array([r[f"p_hat_{k}"] for r in recs]) for v, recs in runs.items()}
        share[k] = {v: [float((g <= 0.1).mean()) for g in gs] for v, gs in grids.items()}
        p00[k] = {v: [float(g[0, 0]) for g in gs] for v, gs in grids.items()}  # p̂(0, 0)
        tests += [
            judge("stiff_blocks", f"{v} {k}", mean_ci(share[k][v]), testable=ok) for v in runs
        ]
        if k == "step":
            maps = {v: gs.mean(0) for v, gs in grids.items()}
            title = "p̂(M1, M2), step NSI (white: 10 %)"
            heatmaps(ctx.out / "stiff_blocks.png", maps, M1_GRID, M2_GRID, title)
    return claim_result("stiff_blocks", tests, runs, share_le_10pct=share, p_hat_00=p00)


def _benchmark(ctx: Ctx) -> tuple[list[dict], dict]:
    space = Path(__file__).resolve().parents[2] / "search_spaces" / ctx.size.bench_space
    family, data, recipe, device = ctx.size.setting
    cfg = BenchConfig(
        space=str(space),
        n=ctx.size.n,
        epochs=ctx.size.bench_epochs,
        seeds=ctx.size.bench_seeds,
        data=data,
        model=family,
        recipe=recipe,
        device=device,
        out=str(ctx.out),
    )
    rows = run_benchmark(cfg, jobs=ctx.jobs)
    corrs = correlations(rows, [*proxy_names(), "tns_end"])
    ceil = ceiling(rows, cfg.seeds)
    write_report(ctx.out, rows, corrs, ceil, bench_provenance(open_study(cfg)))
    return corrs, ceil


def tns_accuracy(ctx: Ctx) -> dict[str, Any]:
    runs = ctx.runs(attention_variants(ctx.size))
    x = [r["tns_step"] for recs in runs.values() for r in recs]
    y = [r["val_accuracy"] for recs in runs.values() for r in recs]
    models = (kendall(x, y), *bootstrap_ci((x, y), kendall))
    corrs, ceil = _benchmark(ctx)
    by = {c["proxy"]: c for c in corrs}
    t0 = ceil["tau"]
    tests = [
        judge("tns_accuracy", "models tau", models, testable=deep_enough(runs)),
        judge("tns_accuracy", "ceiling", (t0, t0, t0)),
    ]
    ok = tests[-1]["verdict"] == "held"
    for tid, key, p in (
        ("tns@init tau", "tau", "tns@init"),
        ("tns@init - params", "d_params", "tns@init"),
        ("tns_end tau", "tau", "tns_end"),
    ):
        c = by[p]
        tests.append(
            judge("tns_accuracy", tid, (c[key], c[f"{key}_lo"], c[f"{key}_hi"]), testable=ok)
        )
    return claim_result(
        "tns_accuracy", tests, runs, correlations=corrs, noise_ceiling=ceil, models_tau=models
    )


def stepnet_vs_se(ctx: Ctx) -> dict[str, Any]:
    v = attention_variants(ctx.size)
    runs = ctx.runs({k: v[k] for k in ("se", "stepnet")})
    acc = {k: [r["val_accuracy"] for r in recs] for k, recs in runs.items()}
    par = {k: recs[0]["adaptor_params"] for k, recs in runs.items()}
    tests = [judge("stepnet_vs_se", "stepnet-se", paired(acc["stepnet"], acc["se"]))]
    title = f"{ctx.size.seeds} seeds; adaptor params {par}"
    bars(ctx.out / "stepnet_vs_se.png", {"validation accuracy": acc}, "accuracy", title)
    return claim_result("stepnet_vs_se", tests, runs, accuracy=acc, adaptor_params=par)
