"""The study's sampler, seeded so that no two launches share one random stream, and told the
study's constraints where it takes them (``constraints_func``: TPE, NSGA-II/III, GP).

The launch that created the study uses ``sampler.seed`` (worker i adds i); any other launch (a
resume, a concurrent launch) derives its seed from (seed, existing trials, worker, salt).

``sampler.history: H`` (tpe, gp) wraps the sampler in :class:`RecentTrials`: it is handed a
view of the study whose trial lists hold only the trials from the H-th most recent finished one
on (by number: H finished trials and the running ones among and after them). TPE fits its Parzen estimators — for several objectives
after a non-dominated sort — to every finished trial at every ask, so its ask grows with the
study (measured: ``benchmarks/README.md``, "The search at scale"); with a window it stays flat,
at the price of forgetting trials older than the window (the front is kept in storage and in
the summary, only the sampler no longer models them).
"""

from __future__ import annotations

import copy
from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from odeattn.study import Space, StudyConfig, grid_space, sampler_class

__all__ = ["RecentTrials", "make_sampler"]


def _suffix(trials: list[FrozenTrial], history: int) -> list[FrozenTrial]:
    """The trials (by number) from the ``history``-th most recent finished one on: O(history +
    the unfinished among them), not O(all trials)."""
    seen = 0
    for i in range(len(trials) - 1, -1, -1):
        seen += trials[i].state.is_finished()
        if seen == history:
            return trials[i:]
    return trials


class _Recent:
    """The study as a windowed sampler sees it: everything delegates to the study, except that
    its trial lists hold only the ``history`` most recent finished trials and the unfinished
    trials numbered after the oldest of them."""

    def __init__(self, study: optuna.Study, history: int) -> None:
        self._study, self._history = study, history

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        recent = _suffix(
            self._study._get_trials(deepcopy=False, use_cache=use_cache), self._history
        )
        out = [t for t in recent if states is None or t.state in states]
        return copy.deepcopy(out) if deepcopy else out

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class RecentTrials(optuna.samplers.BaseSampler):
    """``sampler`` asked with a view of the study limited to its ``history`` most recent finished
    trials (and the unfinished ones after the oldest of them)."""

    def __init__(self, sampler: optuna.samplers.BaseSampler, history: int) -> None:
        self.sampler, self.history = sampler, history

    def _view(self, study: optuna.Study) -> Any:
        return _Recent(study, self.history)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> Any:
        return self.sampler.infer_relative_search_space(self._view(study), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.sampler.sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, name: str, dist: BaseDistribution
    ) -> Any:
        return self.sampler.sample_independent(self._view(study), trial, name, dist)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sampler.before_trial(self._view(study), trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.sampler.after_trial(self._view(study), trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


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
    if study.sampler.history is not None:  # tpe, gp (schema): a flat cost per ask
        return RecentTrials(cls(seed=seed, **kw), study.sampler.history)
    return cls(seed=seed, **kw)
