"""Issue 18 point 2: ``budget.timeout`` means *stop at T* on both backends, checked with the same
assertions: nothing starts after T, the run ends near T, a trial still training at T is failed
as stale (not counted) and re-queued exactly once, finished trials are kept, and a re-run trains
the re-queued configurations to the exact budget.

The objective is a fake of 5 epochs (0.4 s each, the last one instantaneous, so T never falls in
a trial's last epoch): the optuna backend's ``run_trial`` (in this process), Ray's ``trial_fn``
(in Ray workers on a private local Ray, 127.0.0.1)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from odeattn.search import budget_used
from odeattn.search.backends.optuna import open_study, worker_loop
from odeattn.search.backends.ray import _tune as _ray
from odeattn.search.trial import Deadline, _replicates
from odeattn.study import resolve_space
from odeattn.study.config._load import load_study

ROOT = Path(__file__).resolve().parents[1]
EPOCH, EPOCHS = 0.4, 5
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _epochs(params: dict, report: Any) -> float:
    """EPOCHS epochs of EPOCH seconds (the last one instantaneous); the value it reports."""
    acc = 0.5 + 0.01 * (sum(int(v) for v in params.values() if isinstance(v, int)) % 9)
    for e in range(1, EPOCHS + 1):
        if e < EPOCHS:
            time.sleep(EPOCH)
        if report is not None and report(e, {"val_accuracy": acc}):
            break
    return acc


def fake_run_trial(study, params, report, *, trial=None, space=None, screen=None, seed=None):
    acc = _epochs(params, report)
    return {n: acc for n in study.objective_names} | {"epochs_run": float(EPOCHS)}


def ray_trial(cfg, params, report, *, trial=None):
    return {"val_accuracy": _epochs(params, report)}


def ray_sample(trial, space):
    return {"x": trial.suggest_int("x", 0, 8)}


def _check_stopped_at_t(s: optuna.Study, t0: float, t_end: float, timeout: float, slack: float):
    """The same assertions for both backends; returns the stale (stopped, re-queued) trials."""
    ts = s.get_trials()
    assert not [t for t in ts if t.state.name == "RUNNING"]
    started = [t for t in ts if t.datetime_start is not None]
    when = [(t.number, t.state.name, t.datetime_start.timestamp() - t0) for t in started]
    assert all(w <= timeout for *_, w in when), when[-6:]  # none after T
    assert t_end - t0 <= timeout + slack, t_end - t0  # ends near T
    stale = [t for t in ts if t.user_attrs.get("odeattn_stale")]
    complete = [t for t in ts if t.state.name == "COMPLETE"]
    assert stale and complete, [(t.number, t.state.name) for t in ts]  # both happened
    for t in stale:  # failed, not counted, its params queued exactly once
        assert t.state.name == "FAIL"
        retries = [r for r in ts if r.user_attrs.get("odeattn_retry_of") == t.number]
        assert len(retries) == 1 and retries[0].state.name == "WAITING"
        assert retries[0].system_attrs["fixed_params"] == t.params  # enqueued: asked next
    assert {t.state.name for t in ts} == {"COMPLETE", "FAIL", "WAITING"}
    assert budget_used(s) == len(complete)  # stopped trials hold no budget slot
    return stale


def _check_rerun(s: optuna.Study, stale: list, n_trials: int) -> None:
    ts = s.get_trials()
    assert budget_used(s) == n_trials == sum(t.state.name == "COMPLETE" for t in ts)
    for t in stale:  # the re-queued configuration trained to its end
        (retry,) = [r for r in ts if r.user_attrs.get("odeattn_retry_of") == t.number]
        assert retry.state.name == "COMPLETE" and retry.params == t.params


def _study(tmp_path: Path, n_trials: int) -> Any:
    """lth4sa (5 epochs) without pruning or replicates, ``n_trials`` trials."""
    return load_study(
        ROOT / "studies/lth4sa.yaml",
        name="to",
        budget={"n_trials": n_trials},
        pruning=None,
        replicates=1,
        runs_dir=str(tmp_path),
    )


def test_optuna_backend_stops_at_t_and_requeues(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(_replicates, "run_trial", fake_run_trial)
    url, study = f"sqlite:///{tmp_path}/to.db", _study(tmp_path, 8)
    open_study(study, url, resolve_space(study))  # the schema and the data: not part of T here
    t0, timeout = time.time(), 5.0  # trials of 1.6 s: 2 or 3 finish, the next is stopped at T
    worker_loop(study, url, deadline=Deadline.after(timeout))
    s = optuna.load_study(study_name="to", storage=url)
    stale = _check_stopped_at_t(s, t0, time.time(), timeout, slack=2.0)  # a loaded machine
    n = budget_used(s) + len(stale)  # a re-run with room for the re-queued trials exactly
    worker_loop(_study(tmp_path, n), url)
    _check_rerun(s, stale, n)


@pytest.fixture(scope="module")
def local_ray():
    if not _ray.ray_available():
        pytest.skip("ray is not installed")
    ray = _ray._import_ray()
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    started = _ray._init_ray(ray, None, 2)
    yield ray
    if started:
        ray.shutdown()


@pytest.mark.ray
@pytest.mark.slow
def test_ray_backend_stops_at_t_and_requeues(local_ray, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/to.db"
    kw = dict(
        study_name="to",
        objectives=[("val_accuracy", "maximize")],
        space={},
        num_cpus=2,
        max_concurrent=2,
        sample_fn=ray_sample,
        trial_fn=ray_trial,
        storage_path=tmp_path / "ray",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    t0, timeout = time.time(), 30.0  # Ray workers start (slow), trials of 1.6 s finish, then T
    _ray.run({}, storage, n_trials=40, timeout=timeout, **kw)
    s = optuna.load_study(study_name="to", storage=_ray.open_storage(storage))
    stale = _check_stopped_at_t(s, t0, time.time(), timeout, slack=15.0)  # + Tune's teardown
    n = budget_used(s) + len(stale)
    _ray.run({}, storage, n_trials=n, **kw)
    _check_rerun(s, stale, n)
