"""The study's sampler, seeded so that no two launches share one random stream, and told the
study's constraints where it takes them (``constraints_func``: TPE, NSGA-II/III, GP).

The launch that created the study uses ``sampler.seed`` (worker i adds i); any other launch (a
resume, a concurrent launch) derives its seed from (seed, existing trials, worker, salt).
"""

from __future__ import annotations

import optuna

from odeattn.study import Space, StudyConfig, grid_space, sampler_class

__all__ = ["make_sampler"]


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
    if study.sampler.name == "grid":
        return cls(grid_space(space), seed=seed, **kw)
    return cls(seed=seed, **kw)
