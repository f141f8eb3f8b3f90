"""The papers' six claims (issue 14 §4), each one resumable function: train, measure, judge, plot.

1. ``attention_tns`` — attention networks show larger TNS than the plain network (StepNet Fig. 2),
   under the step-normalised NSI (Eq. 4) and the finite-difference NSI.
2. ``stiff_blocks`` — few blocks carry the stiffness: p̂(M) ≤ 10 % for most M (StepNet Fig. 6).
3. ``tns_accuracy`` — TNS rank-correlates with accuracy (StepNet Fig. 7): the §2 benchmark.
4. ``lth4sa`` — a placement with a minority of attention blocks matches full attention (LTH4SA).
5. ``dia_sharing`` — DIA's stage sharing cuts adaptor parameters by > 85 % at equal accuracy
   (DIA Table 3).
6. ``stepnet_vs_se`` — StepNet's adaptor beats SE at (about) equal parameters (StepNet Table 1).

Differences are paired by seed (the same seed initialises and orders the data of both variants):
mean ± Student-t 95 % CI over the seeds. "Matches" means the CI of (variant − reference) lies
above −1 accuracy point. Each claim returns a dict with its numbers, ``held`` and ``verdict``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odeattn.experiments._bench import BenchConfig, proxy_names, run_benchmark
from odeattn.experiments._plots import bars, heatmaps
from odeattn.experiments._report import ceiling, correlations, write_report
from odeattn.experiments._runs import DIGITS, M1_GRID, M2_GRID, RunCache
from odeattn.experiments._stats import fmt_ci, mean_ci
from odeattn.models import create_model

__all__ = ["CLAIMS", "FULL", "PAPER", "QUICK", "SIZES", "Size"]


@dataclass(frozen=True)
class Size:
    """How big a claim's run is: training seeds and epochs (and the benchmark's N)."""

    seeds: int
    epochs: int
    n: int  # benchmark: architectures, epochs and seeds of each
    bench_epochs: int
    bench_seeds: int
    setting: tuple[str, str, str, str] = DIGITS  # (model family, data, recipe, device)
    bench_space: str = "evidence_spread.yaml"


FULL = Size(seeds=5, epochs=15, n=30, bench_epochs=8, bench_seeds=3)
QUICK = Size(seeds=3, epochs=1, n=6, bench_epochs=1, bench_seeds=2)
#: Paper scale (StepNet / DIA: ResNet-164 on CIFAR-10, 164 epochs): for a GPU machine.
PAPER = Size(
    seeds=3,
    epochs=164,
    n=24,
    bench_epochs=30,
    bench_seeds=2,
    setting=("resnet164", "cifar10", "resnet164_cifar", "auto"),
    bench_space="evidence_paper.yaml",
)
SIZES = {"full": FULL, "quick": QUICK, "paper": PAPER}


def _collect(cache: RunCache, variants: dict[str, dict], size: Size, key: str) -> dict[str, list]:
    return {
        name: [cache.get(kw, s, size.epochs)[key] for s in range(size.seeds)]
        for name, kw in variants.items()
    }


def _diff(a: list[float], b: list[float]) -> tuple[float, float, float]:
    return mean_ci([x - y for x, y in zip(a, b, strict=True)])


def _line(name: str, vals: list[float], digits: int = 3) -> str:
    return f"{name} {fmt_ci(*mean_ci(vals), digits=digits)}"


ATTN = {"plain": {"adaptor": "none"}, "se": {"adaptor": "se"}, "stepnet": {"adaptor": "stepnet"}}


def attention_tns(out: Path, size: Size) -> dict[str, Any]:
    cache, res = RunCache(out.parent, size.setting), {}
    groups = {f"TNS ({k} NSI)": _collect(cache, ATTN, size, f"tns_{k}") for k in ("step", "fd")}
    for kind, g in zip(("step", "fd"), groups.values(), strict=True):
        for v in ("se", "stepnet"):
            res[f"{v}-plain {kind}"] = _diff(g[v], g["plain"])
    bars(
        out / "attention_tns.png",
        groups,
        "TNS",
        f"TNS after {size.epochs} epochs, {size.seeds} seeds",
    )
    held = all(res[f"{v}-plain step"][1] > 0 for v in ("se", "stepnet"))
    held_fd = all(res[f"{v}-plain fd"][1] > 0 for v in ("se", "stepnet"))
    text = "; ".join(f"{k}: {fmt_ci(*v, digits=3)}" for k, v in res.items())
    return {
        "held": held,
        "held_fd": held_fd,
        "groups": groups,
        "differences": res,
        "verdict": f"attention TNS > plain (step NSI): {held}; under fd: {held_fd}. {text}",
    }


def stiff_blocks(out: Path, size: Size) -> dict[str, Any]:
    cache = RunCache(out.parent, size.setting)
    maps, frac = {}, {}
    for name, kw in ATTN.items():
        grids = np.array([cache.get(kw, s, size.epochs)["p_hat_step"] for s in range(size.seeds)])
        maps[name] = grids.mean(0)
        frac[name] = [float((g <= 0.1).mean()) for g in grids]  # share of the M grid with p̂ ≤ 10 %
    heatmaps(out / "stiff_blocks.png", maps, M1_GRID, M2_GRID, "p̂(M1, M2), step NSI (white: 10 %)")
    held = all(mean_ci(f)[0] > 0.5 for f in frac.values())
    text = "; ".join(_line(k, v) for k, v in frac.items())
    return {
        "held": held,
        "fraction_le_10pct": frac,
        "verdict": f"share of the M grid (11×11, M1, M2 ∈ [0, 1]) with p̂ ≤ 10 %: {text}",
    }


def tns_accuracy(out: Path, size: Size) -> dict[str, Any]:
    space = Path(__file__).resolve().parents[2] / "search_spaces" / size.bench_space
    family, data, recipe, device = size.setting
    cfg = BenchConfig(
        space=str(space),
        n=size.n,
        epochs=size.bench_epochs,
        seeds=size.bench_seeds,
        data=data,
        model=family,
        recipe=recipe,
        device=device,
        out=str(out),
    )
    rows = run_benchmark(cfg)
    corrs = correlations(rows, [*proxy_names(), "tns_end"])
    ceil = ceiling(rows, cfg.seeds)
    write_report(out, rows, corrs, ceil)
    tns_rows = {c["proxy"]: c for c in corrs if c["proxy"].startswith("tns")}
    held = all(c["tau_lo"] > 0 for c in tns_rows.values())
    text = "; ".join(
        f"{k} τ={fmt_ci(c['tau'], c['tau_lo'], c['tau_hi'])}" for k, c in tns_rows.items()
    )
    ceil_txt = fmt_ci(ceil["tau"], ceil["tau_lo"], ceil["tau_hi"])
    return {
        "held": held,
        "correlations": corrs,
        "noise_ceiling": ceil,
        "verdict": f"{text}; noise ceiling τ={ceil_txt} (n={ceil['n']}, {ceil['seeds']} seeds)",
    }


def _accuracy_claim(
    out: Path, size: Size, name: str, variants: dict, ref: str, family_kw: dict | None = None
) -> dict:
    cache = RunCache(out.parent, size.setting)
    variants = {k: {**(family_kw or {}), **v} for k, v in variants.items()}
    acc = _collect(cache, variants, size, "val_accuracy")
    par = {k: cache.get(v, 0, size.epochs)["adaptor_params"] for k, v in variants.items()}
    diffs = {f"{k}-{ref}": _diff(acc[k], acc[ref]) for k in acc if k != ref}
    bars(
        out / f"{name}.png",
        {"validation accuracy": acc},
        "accuracy",
        f"{name}: {size.epochs} epochs, {size.seeds} seeds; adaptor params {par}",
    )
    return {"accuracy": acc, "adaptor_params": par, "differences": diffs}


def _every_third(family: str, offset: int) -> str:
    """Placement with attention on blocks i ≡ offset (mod 3) of every stage (a third of them)."""
    blocks = create_model(family).architecture()["blocks"]
    return "|".join("".join("1" if i % 3 == offset else "0" for i in range(n)) for n in blocks)


def lth4sa(out: Path, size: Size) -> dict[str, Any]:
    family = size.setting[0]
    v = {
        "full": {"adaptor": "se"},
        "1/3 last": {"adaptor": "se", "placement": _every_third(family, 2)},
        "1/3 middle": {"adaptor": "se", "placement": _every_third(family, 1)},
        "plain": {"adaptor": "none"},
    }
    r = _accuracy_claim(out, size, "lth4sa", v, "full")
    best = max(("1/3 last-full", "1/3 middle-full"), key=lambda k: r["differences"][k][0])
    r["held"] = bool(r["differences"][best][1] > -0.01)
    r["verdict"] = "; ".join(f"{k}: {fmt_ci(*d, digits=3)}" for k, d in r["differences"].items())
    return r


def dia_sharing(out: Path, size: Size) -> dict[str, Any]:
    v = {
        "stage-shared": {"adaptor": "dia_lstm", "sharing": "stage"},
        "per-block": {"adaptor": "dia_lstm", "sharing": "block"},
    }
    deeper = {"blocks": [8, 8, 8]} if size.setting == DIGITS else {}  # 3 blocks: at most 2/3 cut
    r = _accuracy_claim(out, size, "dia_sharing", v, "per-block", deeper)
    p = r["adaptor_params"]
    r["reduction"] = 1 - p["stage-shared"] / p["per-block"]
    d = r["differences"]["stage-shared-per-block"]
    r["held"] = bool(r["reduction"] > 0.85 and d[1] > -0.01)
    r["verdict"] = (
        f"adaptor params cut by {100 * r['reduction']:.1f} %; accuracy (shared − per-block) {fmt_ci(*d, digits=3)}"
    )
    return r


def stepnet_vs_se(out: Path, size: Size) -> dict[str, Any]:
    v = {"stepnet": {"adaptor": "stepnet"}, "se": {"adaptor": "se"}}
    r = _accuracy_claim(out, size, "stepnet_vs_se", v, "se")
    d = r["differences"]["stepnet-se"]
    r["held"] = bool(d[1] > 0)
    r["verdict"] = (
        f"accuracy (stepnet − se) {fmt_ci(*d, digits=3)}; adaptor params {r['adaptor_params']}"
    )
    return r


CLAIMS: dict[str, tuple[str, Callable[[Path, Size], dict[str, Any]]]] = {
    "attention_tns": (
        "attention networks show larger TNS than plain (StepNet Fig. 2)",
        attention_tns,
    ),
    "stiff_blocks": ("few blocks carry the stiffness: p̂ ≤ 10 % for most M (Fig. 6)", stiff_blocks),
    "tns_accuracy": ("TNS rank-correlates with accuracy (Fig. 7)", tns_accuracy),
    "lth4sa": ("a minority of attention blocks matches full attention (LTH4SA)", lth4sa),
    "dia_sharing": ("DIA sharing cuts adaptor params > 85 % at equal accuracy", dia_sharing),
    "stepnet_vs_se": ("StepNet's adaptor beats SE at about equal parameters", stepnet_vs_se),
}
