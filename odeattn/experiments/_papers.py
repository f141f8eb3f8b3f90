"""LTH4SA's and DIA's comparisons as the papers make them (issue 21 §4 b, c).

4. ``lth4sa`` — LTH4SA (EAN code, one attention module per stage shared by the selected blocks):
   first the premise, full attention against none, which must gain more than the matching
   margin (else "matches full attention" cannot be told from "attention is not needed"); then
   every placement arm of :data:`LTH_ARMS`, named before the runs: a quarter of the blocks of
   each stage, first / middle / last / spread / two seeded random draws. Each arm is compared
   with full attention at a Bonferroni level; the claim holds if some arm matches (CI above
   −1 point). No arm is picked after the runs.
5. ``dia_sharing`` — DIA Table 3: each of SE / ECA / SRM in every block against the same module
   shared across the stage (DIA's unit; SRM keeps a BN per block, DIA's †), at ResNet-83's 9
   blocks a stage; accuracy paired by seed. The parameter cut is arithmetic, not evidence:
   :func:`param_arithmetic` counts it exactly with ``create_model`` (ResNet-83: 88.9 %,
   ResNet-164: 94.4 % for SE and ECA, as DIA reports; SRM 44 % / 47 %).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from odeattn.experiments._claims import attention_variants, claim_result
from odeattn.experiments._plan import DIA_MODULES, LTH_ARMS, judge, tests_of
from odeattn.experiments._plots import bars
from odeattn.experiments._sizes import Ctx, Size, paired
from odeattn.models import create_model
from odeattn.proxies import count_params

__all__ = [
    "dia_sharing",
    "dia_variants",
    "lth4sa",
    "lth4sa_variants",
    "param_arithmetic",
    "placement",
]

RANDOM_SEEDS = {"random1": 21, "random2": 22}  # numpy default_rng seeds of the random arms


def _arm_stage(arm: str, n: int, rng: np.random.Generator | None) -> str:
    q = max(1, round(n / 4))  # a quarter of the blocks of the stage
    if arm == "first":
        on = set(range(q))
    elif arm == "last":
        on = set(range(n - q, n))
    elif arm == "middle":
        on = set(range((n - q) // 2, (n - q) // 2 + q))
    elif arm == "spread":
        on = {i * (n // q) for i in range(q)}
    else:
        on = {int(i) for i in rng.choice(n, q, replace=False)}
    return "".join("1" if i in on else "0" for i in range(n))


def placement(arm: str, blocks: list[int]) -> str:
    """The LTH4SA placement string of ``arm`` for a network with ``blocks`` a stage."""
    if arm not in LTH_ARMS:
        raise ValueError(f"`arm` must be one of {list(LTH_ARMS)}, but got arm={arm!r}")
    rng = np.random.default_rng(RANDOM_SEEDS[arm]) if arm in RANDOM_SEEDS else None
    return "|".join(_arm_stage(arm, n, rng) for n in blocks)


def _blocks(size: Size, kw: dict[str, Any]) -> list[int]:
    return list(kw.get("blocks") or create_model(size.setting[0]).architecture()["blocks"])


def lth4sa_variants(size: Size) -> dict[str, dict[str, Any]]:
    """none (= claim 1's plain network), full (SE shared per stage) and every placement arm."""
    kw = size.deep_kw()
    shared = {**kw, "adaptor": "se", "sharing": "stage"}
    blocks = _blocks(size, kw)
    arms = {a: {**shared, "placement": placement(a, blocks)} for a in LTH_ARMS}
    return {"none": attention_variants(size)["plain"], "full": shared, **arms}


def lth4sa(ctx: Ctx) -> dict[str, Any]:
    runs = ctx.runs(lth4sa_variants(ctx.size))
    acc = {k: [r["val_accuracy"] for r in recs] for k, recs in runs.items()}
    premise = judge("lth4sa", "full-none", paired(acc["full"], acc["none"]))
    ok = premise["verdict"] == "held"
    levels = {t.id: t.level for t in tests_of("lth4sa").values()}
    tests = [premise] + [
        judge("lth4sa", f"{a}-full", paired(acc[a], acc["full"], levels[f"{a}-full"]), testable=ok)
        for a in LTH_ARMS
    ]
    par = {k: recs[0]["adaptor_params"] for k, recs in runs.items()}
    title = f"{ctx.size.seeds} seeds; adaptor params {par['full']} (full)"
    bars(ctx.out / "lth4sa.png", {"validation accuracy": acc}, "accuracy", title)
    placements = {a: lth4sa_variants(ctx.size)[a]["placement"] for a in LTH_ARMS}
    return claim_result(
        "lth4sa", tests, runs, accuracy=acc, adaptor_params=par, placements=placements
    )


def dia_variants(size: Size) -> dict[str, dict[str, Any]]:
    """plain, and each DIA module in every block and shared across the stage."""
    kw = size.dia_kw()
    out = {"plain": {**kw, "adaptor": "none"}}
    for m in DIA_MODULES:
        out[f"{m} block"] = {**kw, "adaptor": m, "sharing": "block"}
        out[f"{m} stage"] = {**kw, "adaptor": m, "sharing": "stage"}
    return out


def param_arithmetic(families: tuple[str, ...] = ("resnet83", "resnet164")) -> dict[str, Any]:
    """Adaptor parameters per block vs shared per stage, counted exactly (CIFAR-10 heads)."""
    out: dict[str, Any] = {}
    for fam in families:
        base = count_params(create_model(fam))
        out[fam] = {"blocks": create_model(fam).architecture()["blocks"]}
        for m in DIA_MODULES:
            n = {
                s: count_params(create_model(fam, adaptor=m, sharing=s)) - base
                for s in ("block", "stage")
            }
            out[fam][m] = {**n, "cut": 1 - n["stage"] / n["block"]}
    return out


def dia_sharing(ctx: Ctx) -> dict[str, Any]:
    runs = ctx.runs(dia_variants(ctx.size))
    acc = {k: [r["val_accuracy"] for r in recs] for k, recs in runs.items()}
    par = {k: recs[0]["adaptor_params"] for k, recs in runs.items()}
    tests = []
    for m in DIA_MODULES:
        d = paired(acc[f"{m} stage"], acc[f"{m} block"])
        tests += [judge("dia_sharing", f"{m} stage-block", d), judge("dia_sharing", f"{m} gain", d)]
    cut = {m: 1 - par[f"{m} stage"] / par[f"{m} block"] for m in DIA_MODULES}
    title = f"{ctx.size.seeds} seeds; adaptor params {par}"
    bars(ctx.out / "dia_sharing.png", {"validation accuracy": acc}, "accuracy", title)
    return claim_result(
        "dia_sharing",
        tests,
        runs,
        accuracy=acc,
        adaptor_params=par,
        cut=cut,
        arithmetic=param_arithmetic(),
    )
