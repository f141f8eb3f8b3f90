"""Issue 18 point 2: ``budget.timeout`` means *stop at T* on both backends, checked with the same
assertions: nothing starts after T, the run ends near T, a trial still training at T is failed
as stale (not counted) and re-queued exactly once, finished trials are kept, and a re-run trains
the re-queued configurations to the exact budget.

The objective is a fake of 5 epochs (the last one instantaneous, so T never falls in a trial's
last epoch). The optuna backend's ``run_trial`` runs in this process on a fake clock (an epoch
takes 1 s of it: deterministic however loaded the machine is); Ray's ``trial_fn`` runs in Ray
workers on a private local Ray (127.0.0.1) and sleeps 0.4 s an epoch (Tune's own clock).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from odeattn.search import budget_used
from odeattn.search.backends.optuna import worker_loop
from odeattn.search.backends.ray import _tune as _ray
from odeattn.search.trial import Deadline, _deadline, _replicates
from odeattn.study.config._load import load_study

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 5
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _epochs(params: dict, report: Any, tick: Any) -> float:
    """EPOCHS epochs, ``tick()`` each (the last one instantaneous); the value it reports."""
    acc = 0.5 + 0.01 * (sum(int(v) for v in params.values() if isinstance(v, int)) % 9)
    for e in range(1, EPOCHS + 1):
        if e < EPOCHS:
            tick()
        if report is not None and report(e, {"val_accuracy": acc}):
            break
    return acc


def ray_trial(cfg, params, report, *, trial=None):
    return {"val_accuracy": _epochs(params, report, lambda: time.sleep(0.4))}


def ray_sample(trial, space):
    return {"x": trial.suggest_int("x", 0, 8)}


def _check_stopped_at_t(s: optuna.Study, starts: list[float], end: float, t: float, slack: float):
    """The same assertions for both backends (``starts``, ``end``: seconds from the start, on the
    clock of the deadline ``t``); returns the stale (stopped, re-queued) trials."""
    ts = s.get_trials()
    assert not [q for q in ts if q.state.name == "RUNNING"]
    assert starts and max(starts) <= t, starts  # nothing started after T
    assert end <= t + slack, end  # ends near T
    stale = [q for q in ts if q.user_attrs.get("odeattn_stale")]
    complete = [q for q in ts if q.state.name == "COMPLETE"]
    assert stale and complete, [(q.number, q.state.name) for q in ts]  # both happened
    for q in stale:  # failed, not counted, its params queued exactly once
        assert q.state.name == "FAIL"
        retries = [r for r in ts if r.user_attrs.get("odeattn_retry_of") == q.number]
        assert len(retries) == 1 and retries[0].state.name == "WAITING"
        assert retries[0].system_attrs["fixed_params"] == q.params  # enqueued: asked next
    assert {q.state.name for q in ts} == {"COMPLETE", "FAIL", "WAITING"}
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
    clock, starts = [1000.0], []
    monkeypatch.setattr(_deadline, "clock", lambda: clock[0])

    def fake_run_trial(study, params, report, *, trial=None, space=None, screen=None, seed=None):
        starts.append(clock[0] - 1000.0)
        acc = _epochs(params, report, lambda: clock.__setitem__(0, clock[0] + 1.0))
        return {n: acc for n in study.objective_names} | {"epochs_run": float(EPOCHS)}

    monkeypatch.setattr(_replicates, "run_trial", fake_run_trial)
    url = f"sqlite:///{tmp_path}/to.db"
    # trials of 4 s: 0-4 and 4-8 finish; the one started at 8 reports epoch 2 at 10 = T: stopped
    worker_loop(_study(tmp_path, 8), url, deadline=Deadline.after(10.0))
    s = optuna.load_study(study_name="to", storage=url)
    stale = _check_stopped_at_t(s, starts, clock[0] - 1000.0, 10.0, slack=1.0)
    assert (starts, clock[0], len(stale)) == ([0.0, 4.0, 8.0], 1010.0, 1)  # at the boundary
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
    starts = [q.datetime_start.timestamp() - t0 for q in s.get_trials() if q.datetime_start]
    stale = _check_stopped_at_t(s, starts, time.time() - t0, timeout, slack=15.0)  # + teardown
    n = budget_used(s) + len(stale)
    _ray.run({}, storage, n_trials=n, **kw)
    _check_rerun(s, stale, n)
