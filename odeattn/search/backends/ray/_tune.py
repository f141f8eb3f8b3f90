"""Ray Tune backend: the same search, run as Ray Tune trials, kept in the study's Optuna storage.

The driver (this process) asks Optuna for each trial through ``_ray_searcher.StudySearcher``
(Optuna's sampler, enqueued trials first, public ``ask``/``tell``), so every Ray trial is an
Optuna trial in the **same storage** the ``optuna`` backend uses (optuna-dashboard shows them);
the training runs in a Ray worker (``_ray_worker.make_trainable``: 1 CPU, or a fractional GPU,
per trial; actors are reused) against the same trial, so user attributes and artifacts land in
the study whether the trial completes, is pruned or fails. ``ray`` is imported only inside
:func:`run` (and by ``_ray_searcher``, which :func:`run` imports).

Seam with the search core (``odeattn.search.backends.ray._study.run_ray`` calls it with a study file's settings)::

    summary = run(study_cfg, storage_url, *, study_name, objectives=[(metric, "maximize"), ...],
                  space, n_trials, address=None, sampler=None, timeout=None,
                  cpus_per_trial=1.0, gpus_per_trial=0.0, max_concurrent=None,
                  scheduler="fifo" | "asha", scheduler_metric=None, max_epochs=100,
                  grace_period=1, reduction_factor=3, max_failures=0, storage_path=None,
                  num_cpus=None, sample_fn, trial_fn, progress=None)

* ``sample_fn(trial, space) -> params`` runs in the driver on a real ``optuna.Trial``;
  ``trial_fn(study_cfg, params, report, trial=trial) -> dict[str, float]`` in a Ray worker.
* ``n_trials`` is the **study total** still to reach: the searcher asks while the study's
  counted trials (``_storage.budget_used``) are below it, so a trial re-queued after its worker
  died, or left unfinished by Ctrl-C / ``timeout``, never consumes the budget.
* ``timeout`` (``budget.timeout``): stop at T = the call + ``timeout`` s: the searcher asks
  nothing after T and Tune's time budget stops the trials still running at T, which are
  re-queued (``search.trial.Deadline`` states the rule for both backends).
* ``scheduler="asha"``: ASHA's rule, decided in the worker from the storage
  (``_ray_worker.asha_stops``; rungs strictly before ``max_epochs``), so a stopped trial records
  its attributes and artifacts. ``grace_period`` must be < ``max_epochs``.
* Local Ray (``address=None``) is private and bound to 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
  makes Ray keep the loopback node address; checked after start), with no dashboard and no usage
  stats. ``address="auto"`` / ``RAY_ADDRESS`` (set inside ``ray job submit``) or ``"host:6379"``
  attaches to a cluster; that needs a server RDB (``postgresql://…``) every node reaches.
* Ctrl-C reaches this process as ``KeyboardInterrupt`` (Tune's own SIGINT handler is disabled):
  unfinished trials are re-queued, then it propagates (exit 130 with the resume hint).
* Tune's results go under ``storage_path`` (default ``<run_dir>/ray``); a trial's ``SetupError``
  stops the search and is raised here (exit 2, the budget intact).
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from odeattn._errors import did_you_mean
from odeattn.search.backends.ray._start import QUIET_ENV, _import_ray, _init_ray, ray_available
from odeattn.search.backends.ray._storage import open_storage, resolve_storage_url
from odeattn.search.backends.ray._worker import make_trainable, rungs
from odeattn.search.trial import Deadline
from odeattn.study.config import SetupError

__all__ = ["QUIET_ENV", "SCHEDULERS", "open_storage", "ray_available", "resolve_storage_url", "run"]

SCHEDULERS = ("fifo", "asha")
_DIRECTIONS = {"maximize": "max", "minimize": "min"}


def _check_args(
    objectives: Sequence[tuple[str, str]],
    n_trials: int,
    scheduler: str,
    cpus_per_trial: float,
    gpus_per_trial: float,
    max_failures: int,
) -> None:
    if not objectives:
        raise ValueError("`objectives` must name at least one (metric, direction) pair, but got []")
    for name, direction in objectives:
        if direction not in _DIRECTIONS:
            raise ValueError(
                f"objective {name!r}: direction must be 'maximize' or 'minimize', "
                f"but got {direction!r}"
            )
    if not isinstance(n_trials, int) or n_trials < 0:
        raise ValueError(f"`n_trials` must be an int >= 0, but got n_trials={n_trials!r}")
    if scheduler not in SCHEDULERS:
        hint = did_you_mean(scheduler, SCHEDULERS)
        raise ValueError(
            f"`scheduler` must be one of {list(SCHEDULERS)}, but got {scheduler!r}{hint}"
        )
    if not cpus_per_trial > 0 or gpus_per_trial < 0:
        raise ValueError(
            "`cpus_per_trial` must be > 0 and `gpus_per_trial` >= 0, but got "
            f"cpus_per_trial={cpus_per_trial}, gpus_per_trial={gpus_per_trial}"
        )
    if max_failures < -1:
        raise ValueError(
            f"`max_failures` must be >= -1 (-1: retry forever), but got {max_failures}"
        )


def _summary(study: optuna.Study, before: int, wall_s: float, path: str) -> dict[str, Any]:
    trials = [t for t in study.get_trials(deepcopy=False) if t.number >= before]
    count = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    keys = {"complete": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}
    out = {"n_trials": len(trials), **{k: count[v] for k, v in keys.items()}}
    return {**out, "wall_s": wall_s, "experiment_path": path}


def _open(study_name: str, storage_url: str, objectives: Sequence, sampler: Any) -> optuna.Study:
    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(storage_url),
        load_if_exists=True,
        sampler=sampler,
        directions=[d for _, d in objectives],
    )
    names = [name for name, _ in objectives]
    if len(names) > 1 and not study.metric_names:
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    return study


def _plan(objectives: Sequence, metric: str | None, scheduler: str, asha: tuple) -> dict:
    """What the worker needs for ASHA: metric, mode, η, rung epochs; single-objective or not."""
    names = [name for name, _ in objectives]
    metric = metric or names[0]
    direction = dict(objectives).get(metric, "maximize")
    max_epochs, grace, eta = asha
    if scheduler == "asha" and not eta > 1:
        raise ValueError(f"ASHA's `reduction_factor` must be > 1, but got reduction_factor={eta}")
    if scheduler == "asha" and not 0 < grace < max_epochs:
        raise ValueError(
            f"ASHA's `grace_period` must be >= 1 and below the trial's epochs ({max_epochs}) so "
            f"a rung falls before the last epoch, but got grace_period={grace}; lower "
            f"ray.asha.grace_period or raise train.epochs"
        )
    return {
        "metric": metric,
        "mode": _DIRECTIONS[direction],
        "eta": float(eta),
        "rungs": rungs(max_epochs, grace, eta) if scheduler == "asha" else [],
        "single": len(names) == 1,
    }


def _left(deadline: Deadline) -> float | None:
    """Tune's time budget: the seconds left until T (at least 1 ms: 0 would mean none)."""
    left = deadline.left()
    return None if left is None else max(left, 1e-3)


def _fit(tune: Any, trainable: Callable, searcher: Any, settings: dict, path: Path) -> Any:
    tuner = tune.Tuner(
        tune.with_resources(trainable, settings["resources"]),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,  # the searcher says FINISHED when the study's budget is reached
            reuse_actors=True,
            max_concurrent_trials=settings["max_concurrent"],
            time_budget_s=_left(searcher.deadline),  # stop at T (Ray already up: T, not T + start)
        ),
        run_config=tune.RunConfig(
            name=f"{settings['name']}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
            storage_path=str(path),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=settings["max_failures"]),
        ),
    )
    return tuner.fit()


def _tune(ray: Any, trainable: Callable, searcher: Any, settings: dict, path: Path) -> Any:
    """Start (or attach to) Ray, fit; trials Tune leaves unfinished are re-queued, whatever
    ends the fit (time budget, Ctrl-C, an error); a SetupError of a trial is raised."""
    from ray import tune

    started = _init_ray(ray, settings["address"], settings["num_cpus"])
    why = "Tune stopped (time budget)"
    try:
        grid = _fit(tune, trainable, searcher, settings, path)
    except KeyboardInterrupt:
        why = "interrupted (Ctrl-C)"
        raise
    finally:
        searcher.requeue_unfinished(why)
        if started:
            ray.shutdown()
    if searcher.setup_error:  # the study is wrong (data, model): exit 2, the budget intact
        raise SetupError(searcher.setup_error)
    return grid


def _experiment_path(study_cfg: Any, study_name: str, storage_path: Any) -> Path:
    """Where Tune writes: ``storage_path``, default ``<run_dir>/ray``."""
    run_dir = Path(getattr(study_cfg, "run_dir", Path("runs") / study_name))
    return Path(storage_path or run_dir / "ray").resolve()


def run(
    study_cfg: Any,
    storage_url: str,
    *,
    study_name: str,
    objectives: Sequence[tuple[str, str]],
    space: Any,
    n_trials: int,
    address: str | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
    timeout: float | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    scheduler: str = "fifo",
    scheduler_metric: str | None = None,
    max_epochs: int = 100,
    grace_period: int = 1,
    reduction_factor: float = 3,
    max_failures: int = 0,
    storage_path: str | os.PathLike | None = None,
    num_cpus: int | None = None,
    sample_fn: Callable,
    trial_fn: Callable,
    progress: Callable[[int, str, dict], None] | None = None,
) -> dict[str, Any]:
    """Run Ray Tune to ``n_trials`` counted trials, or stop at now + ``timeout``; a summary."""
    deadline = Deadline.after(timeout)
    _check_args(objectives, n_trials, scheduler, cpus_per_trial, gpus_per_trial, max_failures)
    plan = _plan(
        objectives, scheduler_metric, scheduler, (max_epochs, grace_period, reduction_factor)
    )
    cluster = bool(address or os.environ.get("RAY_ADDRESS"))
    storage_url = resolve_storage_url(storage_url, cluster=cluster)
    ray = _import_ray() if n_trials > 0 else None  # fail before anything is written
    study = _open(study_name, storage_url, objectives, sampler)
    before, start = len(study.get_trials(deepcopy=False)), time.perf_counter()
    path = _experiment_path(study_cfg, study_name, storage_path)
    if n_trials == 0:
        return _summary(study, before, 0.0, str(path))
    from odeattn.search.backends.ray._searcher import StudySearcher

    names = [name for name, _ in objectives]
    searcher = StudySearcher(study, n_trials, names, space, sample_fn, progress, deadline)
    threads, resources = max(1, int(cpus_per_trial)), {"cpu": cpus_per_trial, "gpu": gpus_per_trial}
    trainable = make_trainable(study_cfg, storage_url, study_name, trial_fn, names, plan, threads)
    settings = dict(max_concurrent=max_concurrent, max_failures=max_failures)
    settings |= dict(name=study_name, address=address, num_cpus=num_cpus, resources=resources)
    grid = _tune(ray, trainable, searcher, settings, path)
    return _summary(study, before, time.perf_counter() - start, str(grid.experiment_path))
