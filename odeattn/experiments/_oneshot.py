"""Issue 19's claims (:mod:`._oneshot_plan` defines them): each one resumable function of a
:class:`~._sizes.Ctx`, judged by the plan's tests; parts (b) and (c) here, the ranking parts (a)
and (d) in :mod:`._oneshot_rank`.

The shared units live under ``OUT/oneshot/``: each study's supernets (``<study>/supernet/``,
one checkpoint per training length), the scores and every stand-alone training (cached by
settings, params and seed, so part (c)'s "full" and "none" are part (a)'s at the same seeds).
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

from optuna.trial import TrialState
from rich.console import Console

from odeattn._errors import must
from odeattn.experiments._claims import claim_result
from odeattn.experiments._oneshot_plan import (
    ONESHOT_FULL,
    ONESHOT_QUICK,
    STUDY,
    OneshotSize,
    RankSize,
)
from odeattn.experiments._oneshot_runs import StandaloneCache, one_thread, study_variant
from odeattn.experiments._oneshot_search import search_runs
from odeattn.experiments._plan import judge
from odeattn.experiments._plots import bars
from odeattn.experiments._sizes import FULL, QUICK, Ctx, Size, paired
from odeattn.models import format_placement
from odeattn.search import run_search
from odeattn.study import Space, StudyConfig, decode, encode, load_study, resolve_space
from odeattn.study.samplers import ReinforceSampler, attention_share

__all__ = [
    "base_study",
    "oneshot_lth4sa",
    "oneshot_search",
    "oneshot_size",
    "placement_of",
    "scheme_of",
    "uniform",
]


def oneshot_size(size: Size) -> OneshotSize:
    """The one-shot sizes of a claims' size (``full`` and ``quick``; no ``paper`` size yet)."""
    sizes = {FULL: ONESHOT_FULL, QUICK: ONESHOT_QUICK}
    if size not in sizes:
        raise must("--size", "be full or quick for the one-shot claims (no paper size)", size)
    return sizes[size]


def base_study(
    ctx: Ctx, size: OneshotSize | RankSize, study: Path = STUDY
) -> tuple[StudyConfig, Path]:
    """A shipped study (default: (a)-(c)'s) with the stand-alone epochs and the (short)
    supernet's of ``size``, writing under ``OUT/oneshot`` (returned too)."""
    shared = (ctx.out.parent / "oneshot").resolve()
    study = study_variant(
        load_study(study),
        runs_dir=str(shared),
        train={"epochs": size.epochs},
        supernet={"epochs": size.short},
    )
    return study, shared


def placement_of(space: Space, params: dict[str, Any]) -> str:
    """The placement string (``"101|011|000"``) of a trial's flat params."""
    return format_placement(decode(space, params).model["placement"])


def uniform(space: Space, bit: str) -> dict[str, Any]:
    """The params of every block set to ``bit`` ("1": full attention, "0": none)."""
    return encode(space, {"placement": "|".join(bit * b for b in space.blocks)})


def oneshot_search(ctx: Ctx) -> dict[str, Any]:
    size = oneshot_size(ctx.size)
    base, shared = base_study(ctx, size)
    runs = search_runs(base, size.search_seeds, size.seconds, ctx.out, ctx.jobs)
    cache = StandaloneCache(shared, base, ctx.jobs)
    bests = [r["best"] for rs in runs.values() for r in rs if r["best"] is not None]
    cache.fill((b, f) for b in bests for f in size.fresh)
    acc = {a: [cache.mean_accuracy(r["best"], size.fresh) for r in rs] for a, rs in runs.items()}
    ok = all(math.isfinite(v) for vs in acc.values() for v in vs)  # every run found a best
    d = {f"{a}-{b}": paired(acc[a], acc[b]) for a, b in
         (("oneshot", "tpe"), ("oneshot", "random"), ("tpe", "random"))}  # fmt: skip
    ids = [*d, "oneshot-tpe within", "oneshot-random within"]
    tests = [judge("oneshot_search", t, d[t.removesuffix(" within")], testable=ok) for t in ids]
    title = f"best of each run retrained, seeds {list(size.fresh)}; T = {size.seconds:g} s"
    bars(ctx.out / "oneshot_search.png", {"retrained accuracy": acc}, "accuracy", title)
    space = resolve_space(base)
    for rs in runs.values():
        for r in rs:
            r["placement"] = None if r["best"] is None else placement_of(space, r["best"])
    retrains = {"runs": [cache.get(b, f) for b in bests for f in size.fresh]}
    return claim_result("oneshot_search", tests, retrains, search_runs=runs, retrained=acc,
                        seconds=size.seconds, fresh=list(size.fresh))  # fmt: skip


def scheme_of(study: StudyConfig, trials: list[Any]) -> tuple[Any, float]:
    """The scored architecture with the highest EAN reward, ``reward_scale · accuracy +
    sparsity_weight · (1 − attention share)`` (the controller's kwargs, else its defaults;
    ties: the earliest), and that reward."""
    sig = inspect.signature(ReinforceSampler).parameters
    kw = study.sampler.kwargs
    scale = kw.get("reward_scale", sig["reward_scale"].default)
    weight = kw.get("sparsity_weight", sig["sparsity_weight"].default)

    def reward(t: Any) -> float:
        return scale * float(t.values[0]) + weight * (1.0 - attention_share(t))

    done = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.values and attention_share(t) is not None
    ]
    if not done:
        raise RuntimeError(f"study {study.name!r} finished no scored architecture")
    top = max(done, key=lambda t: (reward(t), -t.number))
    return top, reward(top)


def oneshot_lth4sa(ctx: Ctx) -> dict[str, Any]:
    size = oneshot_size(ctx.size)
    base, shared = base_study(ctx, size)
    space = resolve_space(base)
    tag = f"e{size.epochs}_s{size.short}_n{size.lth_trials}"
    study = study_variant(
        base,
        storage=f"sqlite:///{shared / f'lth4sa_search_{tag}.db'}",
        supernet={"top_k": 0},
        budget={"n_trials": size.lth_trials, "timeout": None},
    )
    with one_thread():
        s = run_search(study, space, console=Console(quiet=True), progress=False)
    top, reward = scheme_of(study, s.get_trials(deepcopy=False))
    schemes = {"sparse": dict(top.params), "full": uniform(space, "1"), "none": uniform(space, "0")}
    cache = StandaloneCache(shared, base, ctx.jobs)
    cache.fill((p, k) for k in range(size.lth_seeds) for p in schemes.values())
    runs = {n: [cache.get(p, k) for k in range(size.lth_seeds)] for n, p in schemes.items()}
    acc = {n: [r["val_accuracy"] for r in rs] for n, rs in runs.items()}
    premise = judge("oneshot_lth4sa", "full-none", paired(acc["full"], acc["none"]))
    ok = premise["verdict"] == "held"
    tests = [
        premise,
        judge("oneshot_lth4sa", "sparse-full", paired(acc["sparse"], acc["full"]), testable=ok),
        judge("oneshot_lth4sa", "sparse-none", paired(acc["sparse"], acc["none"])),
    ]
    title = f"{size.lth_seeds} seeds; scheme {placement_of(space, schemes['sparse'])}"
    bars(ctx.out / "oneshot_lth4sa.png", {"validation accuracy": acc}, "accuracy", title)
    info = {n: {"placement": placement_of(space, p), "attention": runs[n][0]["attention_blocks"],
                "n_params": runs[n][0]["n_params"]} for n, p in schemes.items()}  # fmt: skip
    found = {"trial": top.number, "reward": reward, "supernet_score": float(top.values[0]),
             "scored": len(s.get_trials(deepcopy=False))}  # fmt: skip
    return claim_result("oneshot_lth4sa", tests, runs, accuracy=acc, schemes=info, found=found)
