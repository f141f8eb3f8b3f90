"""A configuration trained with every seed of its plan: the one replicate loop both backends run.

``replicates: k`` trains the sampled configuration k times (``TrialPlan.seeds``: seed_r = seed +
r · STRIDE). Only the first replicate reports per epoch (pruning, ASHA and the TNS screen decide on
it); later replicates run only when the first was neither pruned nor screened out. The result is
the first replicate's measurements with every objective, ``val_accuracy`` and ``tns`` replaced by
the mean over replicates and ``SE = sd/√k`` stored beside (k ≥ 2), so the trial's value, its
``objectives`` attribute and the dashboard's ``val_accuracy``/``tns`` columns are the same number.
The training seconds of all replicates are stored as ``seconds`` (what a retrain is expected to
take). With a ``deadline`` (``budget.timeout``) every replicate stops at the first epoch boundary
past it (:class:`DeadlinePassed`) and no further replicate starts.

A noise-ceiling *retrain* (:func:`retrain`) is the same loop on a configuration the study has
finished, with fresh seeds and no trial to record into: the mean of the first objective.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from odeattn.search.storage import set_constraint, set_user_attrs
from odeattn.search.trial._deadline import Deadline, DeadlinePassed, stop_at
from odeattn.search.trial._objective import Report, Screen, run_trial
from odeattn.study import Space, StudyConfig, plan_for

__all__ = ["Retrain", "aggregate", "retrain", "set_constraints", "train_replicates"]

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


def set_constraints(study: StudyConfig, trial: Any, violations: list[float]) -> dict[str, Any]:
    """Store the trial's constraint values for the samplers as Optuna's ``Trial.set_constraint``
    does (``storage.set_constraint``: ≤ 0 feasible; TPE, NSGA-II/III and GP read them); return the
    ``constraint_violations`` attribute the front, the summary and the dashboard read (the
    caller writes it with the trial's other attributes, in one storage write)."""
    capped = [min(float(v), _UNMEASURED) for v in violations]
    if hasattr(trial, "set_constraint"):  # an optuna.Trial (not a frozen or fake one)
        for c, v in zip(study.constraints, capped, strict=True):
            set_constraint(trial, c.key, v)
    return {"constraint_violations": capped}


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
    deadline: Deadline | None = None,
    seeds: list[int | None] | None = None,
) -> dict[str, Any]:
    """Every replicate of ``params`` for ``trial`` (an ``optuna.Trial``, or ``None``: nothing
    recorded); the aggregate. ``seeds`` default to the plan's seeds of ``trial``. ``stopped()``
    says whether the first replicate was pruned (then no further replicate runs). The trial's
    ``seeds``, ``seconds``, ``objectives``, ``objectives_se`` and the mean ``val_accuracy`` /
    ``tns`` attributes are written here."""
    plan = plan_for(study)
    seeds = list(seeds) if seeds is not None else plan.seeds(trial.number)
    first = stop_at(deadline, report, plan.epochs)
    outs = [run_trial(study, params, first, trial=trial, space=space, screen=screen, seed=seeds[0])]
    if not ((stopped is not None and stopped()) or outs[0].get("screened_out")):
        for sd in seeds[1:]:
            if deadline is not None and deadline.passed():
                raise DeadlinePassed(f"budget.timeout passed before replicate {len(outs) + 1}")
            later = stop_at(deadline, None, plan.epochs)
            outs.append(run_trial(study, params, later, space=space, seed=sd))
    out = aggregate(study, outs)
    if trial is not None:
        _record(study, trial, out, seeds[: len(outs)])
    return out


def _record(study: StudyConfig, trial: Any, out: dict[str, Any], seeds: list) -> None:
    """The replicates' attributes, in one storage write (issue 20)."""
    attrs: dict[str, Any] = {
        "seeds": seeds,
        "seconds": _finite(out.get("seconds")),
        "objectives": {n: _finite(out.get(n)) for n in study.objective_names},
        "objectives_se": out["objectives_se"],
    }
    if study.constraints:
        attrs |= set_constraints(study, trial, plan_for(study).violations(out))
    if len(seeds) > 1:  # the dashboard's columns hold the mean, as the trial's values do
        attrs |= {k: _finite(out[k]) for k in _MEANS if k in out}
        attrs["replicate_values"] = out["replicate_values"]
    set_user_attrs(trial, attrs)


@dataclass(frozen=True)
class Retrain:
    """One noise-ceiling retrain: trial ``number``'s ``params`` with fresh ``seeds``;
    ``expected_s``: the training seconds of the trial (it starts only if they fit the deadline)."""

    number: int
    params: dict[str, Any]
    seeds: tuple[int | None, ...]
    expected_s: float = 0.0


def retrain(study: StudyConfig, job: Retrain, deadline: Deadline | None = None) -> dict[str, Any]:
    """Run ``job``: ``{"value": mean of the first objective}``, ``{"error": one line}`` (a
    failure: stored, not retried) or ``{"skipped": why}`` (did not fit before, or was stopped at,
    the deadline: run again by the next invocation)."""
    deadline = deadline or Deadline()
    if not deadline.fits(job.expected_s):
        return {"skipped": "did not fit before budget.timeout"}
    try:
        out = train_replicates(
            study, job.params, None, trial=None, deadline=deadline, seeds=list(job.seeds)
        )
    except DeadlinePassed:
        return {"skipped": "stopped at budget.timeout"}
    except Exception as e:  # a retrain that diverges: the ceiling says so and goes on
        return {"error": f"{type(e).__name__}: {e}".splitlines()[0]}
    value = out.get(study.objective_names[0], math.nan)
    if not math.isfinite(value):
        return {"error": f"non-finite {study.objective_names[0]} {value}"}
    return {"value": float(value)}
