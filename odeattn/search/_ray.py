"""Ray Tune backend: the same define-by-run search, run as Ray Tune trials, kept in Optuna storage.

Ray Tune's ``OptunaSearch`` drives the sampler in the driver process; each suggestion becomes an
Optuna trial in the **same storage** the ``optuna`` backend uses (so optuna-dashboard shows them),
and the training runs in a Ray worker (1 CPU, or a fractional GPU, per trial; actors are reused).
This is the only module that imports :mod:`ray`, and only inside :func:`run`.

Seam with the search core (``odeattn.search._ray_study.run_ray`` calls it with a study file's settings)::

    summary = run(study_cfg, storage_url, *, study_name, objectives=[(metric, "maximize"), ...],
                  space, n_trials, address=None, sampler=None, timeout=None,
                  cpus_per_trial=1.0, gpus_per_trial=0.0, max_concurrent=None,
                  scheduler="fifo" | "asha", scheduler_metric=None, max_epochs=100,
                  grace_period=1, reduction_factor=3, max_failures=0, storage_path=None,
                  num_cpus=None, sample_fn, trial_fn, progress=None)

* ``sample_fn(trial, space) -> params`` (the study glue passes ``odeattn.search.sample`` after
  tagging the trial with this process, for resume) runs in the driver. ``trial`` is Ray's suggest-capturing
  wrapper around an ``optuna.Trial``: ``suggest_*``, ``set_user_attr`` and ``number`` work.
* ``trial_fn(study_cfg, params, report, trial=trial) -> dict[str, float]`` (the glue passes
  ``odeattn.search.run_trial`` with ``space`` and the study's TNS screen) runs in a Ray worker with
  a live ``optuna.Trial`` bound to the same storage and trial id, so user attributes and artifacts
  land in the study. ``report(epoch, metrics)`` forwards to ``tune.report``, keeps the
  ``intermediate`` user attribute and stores the intermediate value of the scheduler metric
  (default: the first objective) at step ``epoch``, also in multi-objective studies; ASHA stops a
  trial by raising ``SystemExit`` inside ``tune.report``.
* The driver tells Optuna COMPLETE (objective values from ``trial_fn``'s result), PRUNED (stopped
  by ASHA, or ``screened_out``) or FAIL (raised after ``max_failures`` retries, non-finite
  objectives, or cut by ``timeout``).
* ``n_trials`` counts the trials to run now; the caller computes what remains of the study budget.
  Resume is the Optuna storage itself: a re-run continues the same study (no ``Tuner.restore``).
* Local Ray (``address=None``) is private and bound to 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``,
  no dashboard, no usage stats, no auth token file). ``address="auto"`` / ``RAY_ADDRESS`` (set
  inside ``ray job submit``) or ``"host:6379"`` attaches to a cluster; that needs a server RDB
  storage (``postgresql+psycopg2://…``) that every node reaches, and odeattn installed there.
* Results of Tune go under ``storage_path`` (default ``<run_dir>/ray``, i.e. runs/<study>/ray).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import tempfile
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import torch

from odeattn._errors import did_you_mean
from odeattn.search._ray_storage import open_storage, resolve_storage_url

__all__ = ["QUIET_ENV", "SCHEDULERS", "open_storage", "ray_available", "resolve_storage_url", "run"]

log = logging.getLogger(__name__)

#: Environment set (if unset) before ``import ray``: silent, loopback-only, no files outside the run.
QUIET_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # per-epoch reports need not carry every objective
}
SCHEDULERS = ("fifo", "asha")
_DIRECTIONS = {"maximize": "max", "minimize": "min"}
_META, _PARAMS, _FINAL = "_odeattn_trial", "_odeattn_params", "_odeattn_final"
_OBJECT_STORE = 256 * 1024**2
_CREATED: dict[str, list[int]] = {}  # run token -> optuna trial ids created by this driver
_PROGRESS: dict[str, Callable] = {}  # run token -> progress callback (may hold a console, a lock)


def ray_available() -> bool:
    """True when ``ray[tune]`` can be imported (without importing it)."""

    return importlib.util.find_spec("ray") is not None


def _import_ray() -> Any:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "backend 'ray' needs Ray Tune, but `import ray` failed "
            f"({exc}); install it with `pip install 'odeattn[ray]'` or use `backend: optuna`"
        ) from exc
    return ray


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


def _init_ray(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Start (or attach to) Ray; returns True when this call started it (so we shut it down)."""
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    address = address or os.environ.get("RAY_ADDRESS") or None  # set inside `ray job submit`
    if address is not None:
        ray.init(address=address, **quiet)
        return True
    temp_dir = (
        Path(tempfile.gettempdir()) / f"ray-odeattn-{os.getuid()}"
    )  # socket paths < 107 chars
    ray.init(
        address="local",
        num_cpus=num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        object_store_memory=_OBJECT_STORE,
        _temp_dir=str(temp_dir),
        **quiet,
    )
    return True


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool | int | float):
            out[str(key)] = float(value)
        elif hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            out[str(key)] = float(value.item())
    return out


def _make_trainable(
    study_cfg: Any,
    storage_url: str,
    study_name: str,
    trial_fn: Callable,
    objectives: Sequence[str],
    report_metric: str,
    threads: int,
) -> Callable:
    cwd = os.getcwd()  # relative paths of the study (runs/, artifacts, data) mean the driver's

    def trainable(config: dict) -> dict:
        from ray import tune

        if os.path.isdir(cwd):  # Tune starts each trial in its own directory
            os.chdir(cwd)
        torch.set_num_threads(
            threads
        )  # never above the trial's CPUs (oversubscription is 4x slower)
        storage = open_storage(storage_url)
        trial_id = int(config[_META])
        trial = optuna.Trial(optuna.load_study(study_name=study_name, storage=storage), trial_id)
        last, seen = {"epoch": 0}, {}

        def report(epoch: int, metrics: Mapping[str, Any]) -> bool:
            flat = _scalars(metrics)
            for key, value in flat.items():  # per-epoch curves, as the optuna backend keeps them
                seen.setdefault(key, []).append(value if math.isfinite(value) else None)
            trial.set_user_attr("intermediate", seen)
            value = flat.get(report_metric)
            if value is not None and math.isfinite(value):
                storage.set_trial_intermediate_value(trial_id, int(epoch), value)
            last["epoch"] = int(epoch)
            tune.report({**flat, "epoch": int(epoch)})
            return False

        try:
            out = _scalars(trial_fn(study_cfg, config[_PARAMS], report, trial=trial))
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
            raise
        missing = [m for m in objectives if m not in out]
        if missing:
            raise KeyError(
                f"the trial function returned no value for objective(s) {missing}; "
                f"it returned {sorted(out)}"
            )
        return {**out, "epoch": last["epoch"], _FINAL: 1.0}

    return trainable


def _searcher_class(ray_searcher: type) -> type:
    """OptunaSearch subclass, built once and published as ``_Searcher`` in this module, so Tune's
    cloudpickle stores it by reference (a class pickled by value would drag the module's
    registries, e.g. a progress callback holding a console lock, into ``tuner.pkl``)."""
    cls = globals().get("_Searcher")
    if cls is not None:
        return cls

    class _Searcher(ray_searcher):
        """OptunaSearch that tags configs with the Optuna trial id and tells our own states."""

        def suggest(self, trial_id: str) -> dict | None:
            config = super().suggest(trial_id)
            if config is None:
                return None
            ot_trial = self._ot_trials[trial_id]
            _CREATED.setdefault(self.odeattn_token, []).append(ot_trial._trial_id)
            return {_META: ot_trial._trial_id, _PARAMS: config[_PARAMS]}

        def save_to_dir(self, *args: Any, **kwargs: Any) -> None:
            return None  # the Optuna storage is the state; resume = run again on the same study

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            return None  # intermediate values are written by the worker, at step = epoch

        def on_trial_complete(
            self, trial_id: str, result: dict | None = None, error: bool = False
        ) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            self._completed_trials.add(trial_id)
            _tell(
                self._ot_study,
                self._ot_trials[trial_id],
                result,
                error,
                self.odeattn_names,
                _PROGRESS.get(self.odeattn_token),
            )

    _Searcher.__module__, _Searcher.__qualname__ = __name__, "_Searcher"
    globals()["_Searcher"] = _Searcher
    return _Searcher


def _tell(
    study: Any,
    ot_trial: Any,
    result: dict | None,
    error: bool,
    names: list[str],
    callback: Callable | None,
) -> None:
    values, state = _outcome(result, error, names)
    if state == optuna.trial.TrialState.FAIL and values is not None:
        study._storage.set_trial_user_attr(
            ot_trial._trial_id, "error", f"non-finite objective values {values}"
        )
        values = None
    try:
        study.tell(ot_trial, values, state=state)
    except Exception as exc:  # e.g. already finished elsewhere
        log.warning("trial %d: tell failed: %s", ot_trial.number, exc)
    if callback is not None:
        callback(ot_trial.number, state.name, result or {})


def _make_searcher(
    ray_searcher: type,
    *,
    space_fn: Callable,
    names: list[str],
    modes: list[str],
    sampler: Any,
    study_name: str,
    storage: Any,
    token: str,
) -> Any:
    single = len(names) == 1
    searcher = _searcher_class(ray_searcher)(
        space=space_fn,
        metric=names[0] if single else names,
        mode=modes[0] if single else modes,
        sampler=sampler,
        study_name=study_name,
        storage=storage,
    )
    searcher.odeattn_names, searcher.odeattn_token = list(names), token
    return searcher


def _outcome(result: dict | None, error: bool, names: list[str]) -> tuple[list[float] | None, Any]:
    """(values, state) to tell: COMPLETE; PRUNED (stopped early or screened out); FAIL."""
    states = optuna.trial.TrialState
    if error or not result:
        return None, states.FAIL if error else states.PRUNED
    if not result.get(_FINAL) or result.get("screened_out"):
        return None, states.PRUNED
    values = [float(result.get(m, math.nan)) for m in names]
    return values, states.COMPLETE if all(math.isfinite(v) for v in values) else states.FAIL


def _space_fn(sample_fn: Callable, space: Any) -> Callable:
    def define_by_run(trial: Any) -> dict:
        params = sample_fn(trial, space)
        if params is None:
            params = dict(trial.captured_values)
        return {_PARAMS: dict(params)}

    return define_by_run


def _make_scheduler(
    scheduler: str,
    metric: str,
    mode: str,
    max_epochs: int,
    grace_period: int,
    reduction_factor: float,
) -> Any:
    if scheduler == "fifo":
        return None
    from ray.tune.schedulers import AsyncHyperBandScheduler

    return AsyncHyperBandScheduler(
        time_attr="epoch",
        metric=metric,
        mode=mode,
        max_t=max_epochs,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        stop_last_trials=False,
    )  # a trial ends by itself at max_epochs


def _fail_leftovers(storage: Any, token: str) -> int:
    """Trials this driver created that Tune never finished (time budget, crash): mark FAIL."""
    n = 0
    for trial_id in _CREATED.pop(token, []):
        if storage.get_trial(trial_id).state == optuna.trial.TrialState.RUNNING:
            storage.set_trial_user_attr(trial_id, "ray_status", "unfinished when Tune stopped")
            storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
            n += 1
    return n


def _summary(study: optuna.Study, before: int, wall_s: float, path: str) -> dict[str, Any]:
    trials = [t for t in study.get_trials(deepcopy=False) if t.number >= before]
    count = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    return {
        "n_trials": len(trials),
        "complete": count["COMPLETE"],
        "pruned": count["PRUNED"],
        "failed": count["FAIL"],
        "wall_s": wall_s,
        "experiment_path": path,
    }


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
    """Run ``n_trials`` trials of the study with Ray Tune; returns a summary of this run's trials."""
    _check_args(objectives, n_trials, scheduler, cpus_per_trial, gpus_per_trial, max_failures)
    storage_url = resolve_storage_url(
        storage_url, cluster=bool(address or os.environ.get("RAY_ADDRESS"))
    )
    names = [name for name, _ in objectives]
    modes = [_DIRECTIONS[d] for _, d in objectives]
    metric = scheduler_metric or names[0]
    mode = modes[names.index(metric)] if metric in names else "max"
    ray = _import_ray() if n_trials > 0 else None  # fail before anything is written
    storage = open_storage(storage_url)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        load_if_exists=True,
        directions=[d for _, d in objectives],
    )
    if len(names) > 1 and not study.metric_names:
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    before = len(study.get_trials(deepcopy=False))
    run_dir = Path(getattr(study_cfg, "run_dir", Path("runs") / study_name))
    path = Path(storage_path or run_dir / "ray").resolve()
    if n_trials == 0:
        return _summary(study, before, 0.0, str(path))
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    token, start = uuid.uuid4().hex, time.perf_counter()
    searcher = _make_searcher(
        OptunaSearch,
        space_fn=_space_fn(sample_fn, space),
        names=names,
        modes=modes,
        sampler=sampler,
        study_name=study_name,
        storage=storage,
        token=token,
    )
    if progress is not None:
        _PROGRESS[token] = progress
    trainable = _make_trainable(
        study_cfg, storage_url, study_name, trial_fn, names, metric, max(1, int(cpus_per_trial))
    )
    started = _init_ray(ray, address, num_cpus)
    try:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial}),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                num_samples=n_trials,
                reuse_actors=True,
                scheduler=_make_scheduler(
                    scheduler, metric, mode, max_epochs, grace_period, reduction_factor
                ),
                max_concurrent_trials=max_concurrent,
                time_budget_s=timeout,
            ),
            run_config=tune.RunConfig(
                name=f"{study_name}-{time.strftime('%Y%m%d-%H%M%S')}-{token[:6]}",
                storage_path=str(path),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=max_failures),
            ),
        )
        grid = tuner.fit()
        for result in grid:
            if result.error is not None:
                log.warning("ray trial failed: %s", str(result.error).strip().splitlines()[-1:])
    finally:
        _fail_leftovers(storage, token)
        _PROGRESS.pop(token, None)
        if started:
            ray.shutdown()
    return _summary(study, before, time.perf_counter() - start, str(grid.experiment_path))
