"""A configuration trained with every seed of its plan: the one replicate loop both backends run.

``replicates: k`` trains the sampled configuration k times (``TrialPlan.seeds``: seed_r = seed +
r · STRIDE). Only the first replicate reports per epoch (pruning, ASHA and the TNS screen decide on
it); later replicates run only when the first was neither pruned nor screened out. The result is
the first replicate's measurements with every objective, ``val_accuracy`` and ``tns`` replaced by
the mean over replicates and ``SE = sd/√k`` stored beside (k ≥ 2), so the trial's value, its
``objectives`` attribute and the dashboard's ``val_accuracy``/``tns`` columns are the same number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from odeattn.search.trial._objective import Report, Screen, run_trial
from odeattn.study import Space, StudyConfig, plan_for

__all__ = ["aggregate", "set_constraints", "train_replicates"]

#: The value of a constraint whose metric was not measured (infeasible, finite for storage).
_UNMEASURED = 1e12

#: Values reported as the mean over replicates besides the objectives (the dashboard columns).
_MEANS = ("val_accuracy", "val_loss", "tns", "tns@init")


def aggregate(study: StudyConfig, outs: list[dict[str, float]]) -> dict[str, Any]:
    """The first replicate's measurements with the objectives (and :data:`_MEANS`) replaced by
    their mean over replicates; ``objectives_se`` holds sd/√k (k ≥ 2), ``replicate_values``
    every replicate's value."""
    out: dict[str, Any] = dict(outs[0])
    se: dict[str, float] = {}
    per: dict[str, list[float]] = {}
    for name in dict.fromkeys([*study.objective_names, *_MEANS]):
        if name not in outs[0]:
            continue
        vals = np.asarray([o.get(name, math.nan) for o in outs], dtype=float)
        per[name] = [float(v) for v in vals]
        out[name] = float(vals.mean())
        if len(vals) >= 2:
            se[name] = float(vals.std(ddof=1) / math.sqrt(len(vals)))
    out["seconds"] = float(sum(o.get("seconds", 0.0) for o in outs))  # all replicates
    out["objectives_se"] = {k: v for k, v in se.items() if k in study.objective_names}
    out["replicate_values"] = per
    return out


def set_constraints(study: StudyConfig, trial: Any, violations: list[float]) -> None:
    """Store the trial's constraint values: for the samplers through Optuna's public
    ``Trial.set_constraint`` (≤ 0 feasible; TPE, NSGA-II/III and GP read them), and as the
    ``constraint_violations`` attribute the front, the summary and the dashboard read."""
    capped = [min(float(v), _UNMEASURED) for v in violations]
    trial.set_user_attr("constraint_violations", capped)
    if hasattr(trial, "set_constraint"):  # an optuna.Trial (not a frozen or fake one)
        for c, v in zip(study.constraints, capped, strict=True):
            trial.set_constraint(c.key, v)


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def train_replicates(
    study: StudyConfig,
    params: dict[str, Any],
    report: Report | None,
    *,
    trial: Any,
    space: Space | None = None,
    screen: Screen | None = None,
    stopped: Any = None,
) -> dict[str, Any]:
    """Every replicate of ``params`` for ``trial`` (an ``optuna.Trial``); the aggregate.
    ``stopped()`` says whether the first replicate was pruned (then no further replicate runs).
    The trial's ``seeds``, ``objectives``, ``objectives_se`` and the mean ``val_accuracy`` /
    ``tns`` attributes are written here."""
    seeds = plan_for(study).seeds(trial.number)
    outs = [
        run_trial(study, params, report, trial=trial, space=space, screen=screen, seed=seeds[0])
    ]
    if not ((stopped is not None and stopped()) or outs[0].get("screened_out")):
        outs += [run_trial(study, params, None, space=space, seed=sd) for sd in seeds[1:]]
    out = aggregate(study, outs)
    trial.set_user_attr("seeds", seeds[: len(outs)])
    trial.set_user_attr("objectives", {n: _finite(out.get(n)) for n in study.objective_names})
    trial.set_user_attr("objectives_se", out["objectives_se"])
    if study.constraints:
        set_constraints(study, trial, plan_for(study).violations(out))
    if len(outs) > 1:  # the dashboard's columns hold the mean, as the trial's values do
        for k in _MEANS:
            if k in out:
                trial.set_user_attr(k, _finite(out[k]))
        trial.set_user_attr("replicate_values", out["replicate_values"])
    return out
