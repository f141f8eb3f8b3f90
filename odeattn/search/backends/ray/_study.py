"""Glue between a validated study file (:class:`odeattn.study.config._study.StudyConfig`) and the Ray engine.

``run_ray(study, space, storage_url, *, console)`` maps ``study.ray`` (cpus/gpus per trial,
``max_concurrent_trials``, ``scheduler: asha`` and its settings, ``max_failures``,
``storage_path``, ``address``), the objectives, the sampler and the remaining budget onto
:func:`odeattn.search.backends.ray._tune.run` (the study's total budget: the searcher counts what is
already there), with the search core's seams as the trial: ``sample`` runs in
the Ray driver, ``run_trial`` in a Ray worker. The TNS screen (``study.screen``) is the optuna backend's
(``search.trial.screen_for``: :class:`odeattn.proxies.Screen`, each decision recorded as
``screen_*`` user attributes) on the scores of the study's earlier trials, read from the
shared storage. Nothing here imports Ray.
"""

from __future__ import annotations

from typing import Any

import optuna

from odeattn.search.backends.optuna import make_sampler
from odeattn.search.backends.ray import _tune as _ray
from odeattn.search.storage import mark_process
from odeattn.search.trial import Deadline, screen_for, trial_function
from odeattn.study import ConfigError, plan_for, sample

__all__ = ["StudyTrial", "check_ray", "run_ray", "study_sample"]


def study_sample(trial: Any, space: Any) -> dict[str, Any]:
    """Driver side: tag the trial with this process (for resume) and sample its params."""

    mark_process(trial)
    return sample(trial, space)


def _screen_scores(study: optuna.Study) -> list[float]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [
        float(t.user_attrs["screen_score"])
        for t in study.get_trials(deepcopy=False, states=states)
        if t.user_attrs.get("screen_score") is not None
    ]


def _make_screen(study_cfg: Any, trial: optuna.Trial) -> Any:
    """The trial's ``screen(score) -> kept`` (``search.trial.screen_for``), ranked against the
    earlier trials' ``screen_score`` read from the shared storage at each decision."""
    return screen_for(study_cfg, trial, lambda: _screen_scores(trial.study))


class StudyTrial:
    """Worker side (picklable): ``run_trial`` with the resolved space and the TNS screen."""

    def __init__(self, space: Any) -> None:
        self.space = space

    def __call__(
        self, study_cfg: Any, params: dict[str, Any], report: Any, *, trial: optuna.Trial
    ) -> dict[str, float]:

        mark_process(trial)
        return trial_function(study_cfg)(  # as on the optuna backend (issues 18, 19)
            study_cfg,
            params,
            report,
            trial=trial,
            space=self.space,
            screen=_make_screen(study_cfg, trial),
            stopped=lambda: bool(getattr(report, "stopped", False)),
        )


def _max_epochs(study_cfg: Any) -> int:
    """ASHA's ``max_t``: the plan's epochs unless the study sets ``ray.asha.max_t``."""
    return int(study_cfg.ray.asha.max_t or plan_for(study_cfg).epochs)


def _printer(console: Any) -> Any:
    def progress(number: int, state: str, result: dict) -> None:
        if console is None:
            return
        shown = ", ".join(
            f"{k}={result[k]:.4g}"
            for k in ("val_accuracy", "tns", "attention_blocks")
            if isinstance(result.get(k), float)
        )
        error = result.get("error")
        line = f"trial {number} {state.lower()}: " + (error if error else shown)
        console.print(line, soft_wrap=True, highlight=False, markup=False)

    return progress


def check_ray(study_cfg: Any) -> None:
    """Scheduler settings checked before anything is written (ConfigError: exit 2, one line)."""
    rc = study_cfg.ray
    if study_cfg.backend != "ray" or rc.scheduler != "asha":
        return
    max_t, epochs = _max_epochs(study_cfg), plan_for(study_cfg).epochs
    if max_t > epochs:  # a rung at or past the last epoch would prune a finished trial
        raise ConfigError(
            study_cfg.file,
            "ray.asha.max_t",
            f"must be at most the trial's epochs ({epochs}), but got max_t={max_t}; "
            "remove it (default: the epochs) or lower it",
        )
    if not 1 <= rc.asha.grace_period < max_t:
        raise ConfigError(
            study_cfg.file,
            "ray.asha.grace_period",
            f"must be below the trial's epochs ({max_t}) so that ASHA decides before the last "
            f"epoch, but got grace_period={rc.asha.grace_period}; lower it or raise --epochs",
        )


def run_ray(
    study_cfg: Any, space: Any, storage_url: str, *, console: Any = None, deadline: Any = None
) -> dict[str, Any]:
    """Run the study to its budget on Ray Tune; returns :func:`_ray.run`'s summary. ``deadline``
    (a ``search.trial.Deadline``; default ``budget.timeout`` from now): Tune stops at T."""
    check_ray(study_cfg)
    deadline = deadline or Deadline.after(study_cfg.budget.timeout)
    storage = _ray.open_storage(_ray.resolve_storage_url(storage_url))
    try:
        existing = optuna.load_study(study_name=study_cfg.name, storage=storage)
        n_existing = len(existing.get_trials(deepcopy=False))
    except KeyError:
        n_existing = 0
    rc = study_cfg.ray
    return _ray.run(
        study_cfg,
        storage_url,
        study_name=study_cfg.name,
        objectives=list(zip(study_cfg.objective_names, study_cfg.directions)),
        space=space,
        n_trials=study_cfg.budget.n_trials,
        address=rc.address,
        sampler=make_sampler(study_cfg, space, n_existing),
        timeout=deadline.left(),
        cpus_per_trial=rc.cpus_per_trial,
        gpus_per_trial=rc.gpus_per_trial,
        max_concurrent=rc.max_concurrent_trials,
        scheduler=rc.scheduler,
        scheduler_metric=rc.asha.metric,
        max_epochs=_max_epochs(study_cfg),
        grace_period=rc.asha.grace_period,
        reduction_factor=rc.asha.reduction_factor,
        max_failures=rc.max_failures,
        storage_path=rc.storage_path or study_cfg.run_dir / "ray",
        sample_fn=study_sample,
        trial_fn=StudyTrial(space),
        progress=_printer(console),
    )
