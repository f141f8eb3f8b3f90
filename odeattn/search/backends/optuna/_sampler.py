"""The study's sampler, seeded so that no two launches share one random stream, and told the
study's constraints where it takes them (``constraints_func``: TPE, NSGA-II/III, GP).

The launch that created the study uses ``sampler.seed`` (worker i adds i); any other launch (a
resume, a concurrent launch) derives its seed from (seed, existing trials, worker, salt).
"""

from __future__ import annotations

import inspect

import optuna

from odeattn.study import Space, StudyConfig, grid_space, sampler_class

__all__ = ["Violations", "make_sampler"]

#: What a trial that measured nothing (pruned early, failed) violates by: infeasible.
_UNMEASURED = 1e12


class Violations:
    """Optuna's ``constraints_func``: the ``constraint_violations`` attribute a trial stored
    (``TrialPlan.violations``; ≤ 0 satisfied); a trial without it counts as infeasible.
    A class, not a closure, so that Ray can pickle the sampler."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, trial: optuna.trial.FrozenTrial) -> list[float]:
        got = trial.user_attrs.get("constraint_violations")
        if not isinstance(got, list) or len(got) != self.n:
            return [_UNMEASURED] * self.n
        return [min(float(v), _UNMEASURED) for v in got]


def make_sampler(
    study: StudyConfig, space: Space, n_existing: int, worker: int = 0, salt: int = 0
) -> optuna.samplers.BaseSampler:
    seed = study.sampler.seed
    if seed is not None:
        seed = (
            seed + worker
            if n_existing == 0 and salt == 0
            else (seed * 1_000_003 + n_existing * 7919 + worker + salt) % 2**31
        )
    cls = sampler_class(study.sampler.name)
    kw = dict(study.sampler.kwargs)
    if study.constraints and "constraints_func" in inspect.signature(cls).parameters:
        kw.setdefault("constraints_func", Violations(len(study.constraints)))
    if study.sampler.name == "grid":
        return cls(grid_space(space), seed=seed, **kw)
    return cls(seed=seed, **kw)
