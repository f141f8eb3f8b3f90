"""Issue 19's ranking parts (:mod:`._oneshot_plan`, parts a and d): does the supernet rank
architectures like training them from scratch?

One code path, :func:`rank_claim`, for every :class:`RankPart` — a study file, its sizes, how its
architectures are drawn and labelled, the premise and the count the supernet is set against:

* :data:`RANK` (a) — ``studies/lth4sa_supernet.yaml``, the placement space: none, full, then
  distinct uniform draws (:func:`rank_archs`); the premise is a ceiling CI above 0; the count is
  attention blocks.
* :data:`SPREAD` (d) — ``studies/spread_supernet.yaml``, evidence_spread's depth, adaptor and method
  per stage at a fixed width: the first distinct draws of the supernet's own sampler
  (:func:`spread_archs`); the premise is claim 3's (ceiling point estimate ≥ 0.6); the count is
  parameters.
* :data:`ELASTIC` (e) — ``studies/elastic_supernet.yaml``, evidence_spread's whole space with the
  width of every stage shared by elastic width; drawn, judged and counted as (d).

Each architecture is scored by the study's supernet trained ``short`` and ``long`` epochs, with
and without BatchNorm recalibration, and trained from scratch with ``seeds`` seeds. Kendall τ-b
(Kendall 1945) of score and mean stand-alone accuracy with a percentile-bootstrap CI over
architectures; differences of two τ by a paired bootstrap; the noise ceiling is the mean τ between
two seeds' accuracies (:func:`~._stats.noise_ceiling_ci`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from odeattn._errors import must
from odeattn.experiments._claims import claim_result
from odeattn.experiments._oneshot import base_study, placement_of, uniform
from odeattn.experiments._oneshot_plan import (
    ARCH_SEED,
    ELASTIC_FULL,
    ELASTIC_QUICK,
    ELASTIC_STUDY,
    ONESHOT_FULL,
    ONESHOT_QUICK,
    SPREAD_FULL,
    SPREAD_QUICK,
    SPREAD_STUDY,
    STUDY,
    RankSize,
)
from odeattn.experiments._oneshot_runs import StandaloneCache, study_variant, supernet_scores
from odeattn.experiments._plan import judge
from odeattn.experiments._plots import scatters
from odeattn.experiments._sizes import FULL, QUICK, Ctx, Size
from odeattn.experiments._stats import bootstrap_ci, corr_diff_ci, kendall, noise_ceiling_ci
from odeattn.study import Space, decode, draw, resolve_space

__all__ = [
    "ELASTIC",
    "RANK",
    "SPREAD",
    "RankPart",
    "arch_label",
    "oneshot_rank",
    "oneshot_rank_elastic",
    "oneshot_rank_spread",
    "rank_archs",
    "rank_claim",
    "rank_tests",
    "spread_archs",
]

N_BOOT = 1000  # bootstrap resamples of every CI of a ranking part
LENGTHS = ("short", "long")
SCORES = ("recal", "plain")


@dataclass(frozen=True)
class RankPart:
    """What a ranking part ranks (see the module docstring)."""

    claim: str
    study: Path
    full: RankSize
    quick: RankSize
    archs: Callable[[Space, int], list[dict[str, Any]]]  # (space, n) -> n distinct params
    label: Callable[[Space, dict[str, Any]], str]  # an architecture in the result's table
    label_key: str  # its column in the result's table
    versus: tuple[str, str, str]  # (test id, stand-alone record key, column): the count
    ceiling_ci: bool  # the premise: the ceiling's CI (True) or its point estimate (claim 3)

    def size(self, size: Size) -> RankSize:
        """The part's sizes at a claims' size (``full`` and ``quick``; no ``paper`` size)."""
        sizes = {FULL: self.full, QUICK: self.quick}
        if size not in sizes:
            raise must("--size", "be full or quick for the one-shot claims (no paper size)", size)
        return sizes[size]


def rank_archs(space: Space, n: int) -> list[dict[str, Any]]:
    """Part (a)'s architectures: none, full, then the first distinct uniform draws of the space
    with ``torch.Generator().manual_seed(ARCH_SEED)`` (the supernet's own path distribution)."""
    if not 2 <= n <= 2 ** sum(space.blocks):
        raise must("archs", f"be in 2..{2 ** sum(space.blocks)} (the space's size)", n)
    out = [uniform(space, "0"), uniform(space, "1")]
    seen = {placement_of(space, p) for p in out}
    gen = torch.Generator().manual_seed(ARCH_SEED)
    while len(out) < n:
        p = draw(space, gen)
        if placement_of(space, p) not in seen:
            seen.add(placement_of(space, p))
            out.append(p)
    return out


def _model_key(space: Space, params: dict[str, Any]) -> str:
    return json.dumps(decode(space, params).model, sort_keys=True, default=list)


def spread_archs(space: Space, n: int, tries: int = 100) -> list[dict[str, Any]]:
    """The first ``n`` distinct architectures (by the ``create_model`` kwargs they decode to) of
    uniform draws of the space — ``Supernet.sample``'s distribution — with
    ``torch.Generator().manual_seed(ARCH_SEED)``; an error after ``tries · n`` draws."""
    if n < 2:
        raise must("archs", "be at least 2 (a ranking)", n)
    gen = torch.Generator().manual_seed(ARCH_SEED)
    out, seen = [], set()
    for _ in range(tries * n):
        p = draw(space, gen)
        if (key := _model_key(space, p)) not in seen:
            seen.add(key)
            out.append(p)
            if len(out) == n:
                return out
    raise must("archs", f"be at most the distinct architectures of the space ({len(out)})", n)


def arch_label(space: Space, params: dict[str, Any]) -> str:
    """``"blocks 3-1-3; adaptor se; method heun-euler-heun"``: the kwargs ``params`` decode to."""

    def fmt(v: Any) -> str:
        return "-".join(map(str, v)) if isinstance(v, list | tuple) else str(v)

    return "; ".join(f"{k} {fmt(v)}" for k, v in decode(space, params).model.items())


def _tau(x: list[float], y: list[float]) -> tuple[float, float, float]:
    return (kendall(x, y), *bootstrap_ci((x, y), kendall, n_boot=N_BOOT))


def rank_tests(
    scores: dict[str, dict[str, list[float]]],
    accs: list[list[float]],
    count: list[float],
    part: RankPart | None = None,
) -> tuple[list[dict[str, Any]], list[float], tuple[float, float, float]]:
    """A ranking part's tests (default: part a's) from ``scores[length][recal|plain]`` (one per
    architecture), the stand-alone accuracies ``accs[seed][architecture]`` and the count the
    supernet is set against; the mean accuracy over seeds; the noise ceiling with its CI."""
    part = part or RANK
    mean = np.mean(np.asarray(accs, dtype=float), axis=0).tolist()
    ceil = noise_ceiling_ci(accs, n_boot=N_BOOT)
    premise = judge(part.claim, "ceiling", ceil if part.ceiling_ci else (ceil[0],) * 3)
    ok = premise["verdict"] == "held"
    x = {f"{m} {k}": scores[k][m] for k in LENGTHS for m in SCORES}
    est = {f"{name} tau": _tau(v, mean) for name, v in x.items()}
    for k in LENGTHS:
        est[f"recal-plain {k}"] = corr_diff_ci(
            x[f"recal {k}"], x[f"plain {k}"], mean, n_boot=N_BOOT
        )
    est["long-short"] = corr_diff_ci(x["recal long"], x["recal short"], mean, n_boot=N_BOOT)
    est[part.versus[0]] = corr_diff_ci(x["recal long"], count, mean, n_boot=N_BOOT)
    tests = [premise] + [judge(part.claim, t, e, testable=ok) for t, e in est.items()]
    return tests, mean, ceil


def _cost(scores: dict[str, dict[str, Any]], runs: list[list[dict]]) -> dict[str, float]:
    out = {"standalone_s": float(np.mean([r["seconds"] for rs in runs for r in rs]))}
    for k, sc in scores.items():
        out[f"supernet_{k}_train_s"] = float(sc["train_seconds"])
        out[f"score_{k}_recal_s"] = float(np.mean(sc["recal_s"]))
        out[f"score_{k}_plain_s"] = float(np.mean(sc["plain_s"]))
    return out


def rank_claim(ctx: Ctx, part: RankPart) -> dict[str, Any]:
    """Run (or resume) a ranking part and judge its plan (the module docstring)."""
    size = part.size(ctx.size)
    base, shared = base_study(ctx, size, part.study)
    space = resolve_space(base)
    archs = part.archs(space, size.archs)
    lengths = {"short": size.short, "long": size.long}
    studies = [study_variant(base, supernet={"epochs": e}) for e in lengths.values()]
    scores = dict(zip(lengths, supernet_scores(studies, archs, shared, ctx.jobs), strict=True))
    cache = StandaloneCache(shared, base, ctx.jobs)
    cache.fill((p, s) for s in range(size.seeds) for p in archs)
    runs = [[cache.get(p, s) for p in archs] for s in range(size.seeds)]
    accs = [[r["val_accuracy"] for r in rs] for rs in runs]
    count = [float(r[part.versus[1]]) for r in runs[0]]
    tests, mean, ceil = rank_tests(scores, accs, count, part)
    panels = {f"{m}, {k} ({lengths[k]} epochs)": (scores[k][m], mean) for k in lengths
              for m in SCORES}  # fmt: skip
    scatters(ctx.out / f"{part.claim}.png", panels, "supernet score", "mean stand-alone accuracy")
    table = [
        {part.label_key: part.label(space, p), part.versus[2]: c, "params": dict(p),
         "accuracy": [acc[i] for acc in accs]}
        | {f"{m}_{k}": scores[k][m][i] for k in lengths for m in SCORES}
        for i, (p, c) in enumerate(zip(archs, count, strict=True))
    ]  # fmt: skip
    every = {"runs": [r for rs in runs for r in rs]}
    return claim_result(part.claim, tests, every, architectures=table, epochs=lengths,
                        cost=_cost(scores, runs), seeds=size.seeds,
                        ceiling=dict(zip(("tau", "lo", "hi"), ceil)))  # fmt: skip


RANK = RankPart(
    "oneshot_rank",
    STUDY,
    ONESHOT_FULL.rank,
    ONESHOT_QUICK.rank,
    rank_archs,
    placement_of,
    "placement",
    ("long - attention", "attention_blocks", "attention"),
    ceiling_ci=True,
)
SPREAD = RankPart(
    "oneshot_rank_spread",
    SPREAD_STUDY,
    SPREAD_FULL,
    SPREAD_QUICK,
    spread_archs,
    arch_label,
    "architecture",
    ("long - params", "n_params", "n_params"),
    ceiling_ci=False,
)


ELASTIC = RankPart(
    "oneshot_rank_elastic",
    ELASTIC_STUDY,
    ELASTIC_FULL,
    ELASTIC_QUICK,
    spread_archs,
    arch_label,
    "architecture",
    ("long - params", "n_params", "n_params"),
    ceiling_ci=False,
)


def oneshot_rank(ctx: Ctx) -> dict[str, Any]:
    """Part (a): :data:`RANK`."""
    return rank_claim(ctx, RANK)


def oneshot_rank_spread(ctx: Ctx) -> dict[str, Any]:
    """Part (d): :data:`SPREAD`."""
    return rank_claim(ctx, SPREAD)


def oneshot_rank_elastic(ctx: Ctx) -> dict[str, Any]:
    """Part (e): :data:`ELASTIC`."""
    return rank_claim(ctx, ELASTIC)
