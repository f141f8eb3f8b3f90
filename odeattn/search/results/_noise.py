"""Noise as a first-class number: rank correlations with a CI, and the study's noise ceiling.

Every correlation is printed with its n and a bootstrap 95 % CI (percentile method, Efron &
Tibshirani 1993, ch. 13: resample the n pairs with replacement B times, τ of each resample, the
2.5th and 97.5th percentiles), or as "undefined" with the reason (n < 3, constant values), never
"nan".

The *noise ceiling* asks whether the study's ranking repeats: ``noise.trials`` finished trials
(``"auto"``: :func:`planned_retrains`) are trained again with fresh seeds (``_ceiling``: which
trials, which seeds, through which backend, before which deadline). Reported: Kendall τ between
the stored and the fresh values with its bootstrap CI, how many of the planned retrains ran, and
the per-configuration seed noise ``sd = sd(stored − fresh) / √2``. Two front members whose first
objectives differ by less than ``1.96 · √2 · sd`` are *within noise*. When the CI of τ contains
0 the study says plainly that its ranking does not repeat across seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from scipy.stats import kendalltau

from odeattn.search.results._front import best_of, finished
from odeattn.study import StudyConfig, plan_for

__all__ = [
    "AUTO_MAX_EPOCHS",
    "AUTO_TRIALS",
    "SMALL_DATA",
    "format_corr",
    "kendall_ci",
    "noise_lines",
    "planned_retrains",
]

#: ``noise.trials: auto``: this many retrains when a trial is cheap (see :func:`planned_retrains`).
AUTO_TRIALS = 6
#: Data sets built in memory, whose epoch takes about a second on a CPU.
SMALL_DATA = ("digits", "synthetic")
#: ``auto`` stays on while one retrain trains at most this many epochs (epochs × replicates).
AUTO_MAX_EPOCHS = 100


def planned_retrains(study: StudyConfig) -> int:
    """``noise.trials``, with ``"auto"`` resolved from the plan: :data:`AUTO_TRIALS` when the data
    set is small (:data:`SMALL_DATA`) and one retrain trains ≤ :data:`AUTO_MAX_EPOCHS` epochs
    (``plan.epochs × plan.replicates``), else 0 (off)."""
    if study.noise.trials != "auto":
        return int(study.noise.trials)
    plan = plan_for(study)
    cheap = study.data.name in SMALL_DATA and plan.epochs * plan.replicates <= AUTO_MAX_EPOCHS
    return AUTO_TRIALS if cheap else 0


def kendall_ci(
    x: Sequence[float], y: Sequence[float], *, n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """``{"n", "tau", "lo", "hi"}`` (bootstrap 95 % CI) or ``{"n", "undefined": reason}``."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = int(a.size)
    if n < 3:
        return {"n": n, "undefined": "needs n ≥ 3"}
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"n": n, "undefined": "constant values"}
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        if np.ptp(a[i]) > 0 and np.ptp(b[i]) > 0:
            taus.append(kendalltau(a[i], b[i]).statistic)
    lo, hi = np.percentile(taus, [2.5, 97.5])
    return {"n": n, "tau": float(kendalltau(a, b).statistic), "lo": float(lo), "hi": float(hi)}


def format_corr(c: dict[str, Any], name: str = "Kendall τ") -> str:
    if "undefined" in c:
        return f"{name} undefined (n = {c['n']}: {c['undefined']})"
    return f"{name} = {c['tau']:.2f} [95 % CI {c['lo']:.2f}, {c['hi']:.2f}], n = {c['n']}"


def _not_measured(study: StudyConfig) -> str:
    m, plan = planned_retrains(study), plan_for(study)
    if study.noise.trials == "auto" and m == 0:
        return (
            f"noise ceiling: not measured (noise.trials: auto is off when one trial is expensive: "
            f"{plan.epochs} epochs × {plan.replicates} replicate(s) of {study.data.name}; set "
            f"noise.trials: {AUTO_TRIALS} to measure it)"
        )
    if m == 0:
        return "noise ceiling: not measured (noise.trials: 0)"
    return "noise ceiling: not measured (it needs noise.trials ≥ 3 and 3 finished trials)"


def _ran(c: dict[str, Any]) -> list[str]:
    """How many of the planned retrains ran (records before issue 18 ran them all)."""
    planned, ran, failed = c.get("planned"), c.get("ran"), c.get("failed") or {}
    if planned is None or ran == planned:
        return []
    out = [f"noise ceiling: {ran} of {planned} planned retrains ran"]
    if failed:
        out[0] += f", {len(failed)} failed (" + "; ".join(failed.values()) + ")"
    if ran + len(failed) < planned:
        out[0] += (
            f"; {planned - ran - len(failed)} not run before budget.timeout (or interrupted): "
            "re-run the same command to complete the ceiling"
        )
    return out


def noise_lines(study: StudyConfig, s: optuna.Study) -> list[str]:
    """What the summary says about noise: the ceiling and whether the front is within it."""
    c = s.user_attrs.get("noise_ceiling")
    if not c:
        return [_not_measured(study), *_relations(study, s)]
    name, sd = c["objective"], c["seed_sd"]
    spread = f"; seed sd per configuration {sd:.4g}" if sd is not None else ""
    lines = [
        f"noise ceiling of {name} (seed to seed, {c['replicates']} replicate(s) per value): "
        f"{format_corr(c)}{spread}",
        *_ran(c),
    ]
    if ("undefined" in c and c["n"] >= 3) or ("undefined" not in c and c["lo"] <= 0.0):
        lines.append(
            f"the ranking of {name} does NOT repeat across seeds (the CI of τ reaches 0): the "
            f"configurations of this space are not distinguishable by {name} at this budget"
        )
    lines += _relations(study, s)
    front = [v[0] for _, v in best_of(study, s)]
    if len(front) >= 2 and sd is not None:
        bar = 1.96 * math.sqrt(2) * sd
        pairs = [(a, b) for i, a in enumerate(front) for b in front[i + 1 :]]
        within = sum(abs(a - b) < bar for a, b in pairs)
        lines.append(
            f"front: {within} of {len(pairs)} pairs differ in {name} by less than "
            f"1.96·√2·sd = {bar:.3g}, i.e. within noise"
        )
    return lines


def _relations(study: StudyConfig, s: optuna.Study) -> list[str]:
    """Kendall τ (n, CI) of the first objective with each other one over the finished trials;
    a CI that contains 0 is said plainly: no detectable relation at this budget."""
    done = [v for _, v in finished(study, s)]
    names = study.objective_names
    out = []
    for j in range(1, len(names)):
        c = kendall_ci([v[0] for v in done], [v[j] for v in done], n_boot=study.noise.bootstrap)
        none = "undefined" in c or c["lo"] <= 0.0 <= c["hi"]
        out.append(
            f"{names[0]} vs {names[j]} over the finished trials: {format_corr(c)}"
            + ("  -> no detectable relation" if none else "")
        )
    return out
