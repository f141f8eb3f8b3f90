"""Ray Tune backend: trials land in the shared Optuna storage; odeattn works without Ray installed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import optuna
import pytest

from odeattn.search.backends.ray import _tune as _ray

ROOT = Path(__file__).resolve().parents[1]
XS = [0.0, 3.0, 0.5, 2.0, 1.0, 4.0]  # trial number -> x (deterministic, independent of the sampler)


def sample_fixed(trial, space):
    trial.suggest_float("u", 0.0, 1.0)  # a real suggestion goes through OptunaSearch
    trial.set_user_attr("sampled_by", "driver")
    return {"x": XS[trial.number % len(XS)], "space": space}


def trial_sleepy(cfg, params, report, *, trial=None):
    import torch

    start = time.time()
    if trial.number < 2:  # trials 0 and 1 wait for each other: passes only if they run at once
        barrier = Path(cfg["barrier"])
        (barrier / str(trial.number)).touch()
        while not ((barrier / "0").exists() and (barrier / "1").exists()):
            if time.time() - start > 120:
                raise TimeoutError("trials 0 and 1 did not run concurrently")
            time.sleep(0.05)
    x = params["x"]
    for epoch in (1, 2):
        time.sleep(cfg["sleep"])
        report(epoch, {"loss": x * x + 1.0 / epoch, "note": "not a number"})
    trial.set_user_attr("t0", start)
    trial.set_user_attr("t1", time.time())
    trial.set_user_attr("threads", torch.get_num_threads())
    trial.set_user_attr("space_seen", params["space"])
    return {"loss": x * x, "acc": 1.0 - x / 10}


def trial_four_epochs(cfg, params, report, *, trial=None):
    x = params["x"]
    for epoch in range(1, 5):
        if report(epoch, {"loss": x * x + 1.0 / epoch}):  # True: ASHA stops it, as fit() does
            break
    return {"loss": x * x + 1.0 / epoch}


def trial_flaky(cfg, params, report, *, trial=None):
    x = params["x"]
    if x == 3.0:
        marker = Path(cfg["dir"]) / f"attempt-{time.time_ns()}"
        marker.write_text("x")
        raise RuntimeError("boom")
    report(1, {"loss": x})
    return {"loss": x * x, "acc": 1.0 - x / 10}


@pytest.fixture(scope="module")
def local_ray():
    if not _ray.ray_available():
        pytest.skip("ray is not installed")
    ray = _ray._import_ray()  # first: Ray reads its environment (loopback only) at import
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    started = _ray._init_ray(ray, None, 2)
    yield ray
    if started:
        ray.shutdown()


def _max_overlap(intervals):
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    best = cur = 0
    for _, step in events:
        cur += step
        best = max(best, cur)
    return best


@pytest.mark.ray
def test_two_concurrent_trials_land_in_optuna_storage(local_ray, tmp_path) -> None:
    storage = str(tmp_path / "journal.log")
    kw = dict(
        study_name="ray_small",
        objectives=[("loss", "minimize")],
        space={"k": 1},
        num_cpus=2,
        sample_fn=sample_fixed,
        trial_fn=trial_sleepy,
        storage_path=tmp_path / "ray",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    summary = _ray.run({"sleep": 0.3, "barrier": str(tmp_path)}, storage, n_trials=4, **kw)
    assert summary["n_trials"] == 4 and summary["complete"] == 4
    study = optuna.load_study(study_name="ray_small", storage=_ray.open_storage(storage))
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:
        x = XS[t.number]
        assert t.values == [x * x]
        assert t.intermediate_values == {1: x * x + 1.0, 2: x * x + 0.5}
        assert set(t.params) == {"u"} and 0.0 <= t.params["u"] <= 1.0
        assert t.user_attrs["sampled_by"] == "driver" and t.user_attrs["threads"] == 1
        assert t.user_attrs["space_seen"] == {"k": 1}
    assert _max_overlap([(t.user_attrs["t0"], t.user_attrs["t1"]) for t in trials]) == 2  # 2 CPUs
    # running again continues the same study (resume) to its new total: one more trial, number 4
    _ray.run({"sleep": 0.0, "barrier": str(tmp_path)}, storage, n_trials=5, **kw)
    again = study.get_trials()
    assert [t.number for t in again] == list(range(5))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in again)


@pytest.mark.ray
def test_asha_stops_bad_trials_as_pruned(local_ray, tmp_path) -> None:
    storage = "sqlite:///" + str(tmp_path / "s.db")
    summary = _ray.run(
        {},
        storage,
        study_name="asha",
        objectives=[("loss", "minimize")],
        space=None,
        n_trials=2,
        max_concurrent=1,
        scheduler="asha",
        max_epochs=4,
        grace_period=1,
        reduction_factor=2,
        sample_fn=sample_fixed,
        trial_fn=trial_four_epochs,
        storage_path=tmp_path / "ray",
    )
    trials = optuna.load_study(study_name="asha", storage=storage).get_trials()
    first, second = trials
    assert first.state == optuna.trial.TrialState.COMPLETE and first.values == [0.25]
    assert first.intermediate_values == {e: 1.0 / e for e in range(1, 5)}
    # x = 3 is worse than x = 0 at the first rung (epoch 1): ASHA stops it there
    assert second.state == optuna.trial.TrialState.PRUNED
    assert second.values == [10.0]  # Optuna's convention: a pruned trial keeps its last report
    assert second.intermediate_values == {1: 10.0}
    assert (summary["complete"], summary["pruned"]) == (1, 1)


@pytest.mark.ray
def test_multi_objective_and_failures(local_ray, tmp_path) -> None:
    storage = str(tmp_path / "journal.log")
    done, lock = (
        [],
        threading.RLock(),
    )  # a progress callback may hold unpicklable things (a console)
    _ray.run(
        {"dir": str(tmp_path)},
        storage,
        study_name="mo",
        objectives=[("loss", "minimize"), ("acc", "maximize")],
        space=None,
        n_trials=3,
        max_concurrent=1,
        max_failures=1,
        sample_fn=sample_fixed,
        trial_fn=trial_flaky,
        storage_path=tmp_path / "ray",
        progress=lambda n, s, r: lock and done.append((n, s)),
    )
    study = optuna.load_study(study_name="mo", storage=_ray.open_storage(storage))
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert study.metric_names == ["loss", "acc"]
    states = [t.state.name for t in study.get_trials()]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]
    assert study.trials[2].values == [0.25, 0.95]
    # multi-objective: per-epoch values only as the `intermediate` attribute (TPE would score a
    # pruned trial by its Optuna intermediate values and needs a single direction for that)
    assert study.trials[2].intermediate_values == {}
    assert study.trials[2].user_attrs["intermediate"] == {"loss": [0.5]}
    assert study.trials[1].user_attrs["error"] == "RuntimeError: boom"
    # the trial's own exception is its outcome (one line), not a worker crash: no Tune retry
    assert len(list(tmp_path.glob("attempt-*"))) == 1
    assert sorted(done) == [(0, "COMPLETE"), (1, "FAIL"), (2, "COMPLETE")]


def retrain_sleepy(study, job, deadline):
    """A fake retrain: retrains 0 and 1 wait for each other (passes only if they run at once)."""
    box, start = Path(study.runs_dir), time.time()
    (box / f"retrain-{job.number}").touch()
    while job.number < 2 and not all((box / f"retrain-{k}").exists() for k in (0, 1)):
        if time.time() - start > 120:
            return {"error": "retrains 0 and 1 did not run at the same time"}
        time.sleep(0.05)
    return {"value": job.seeds[0] + deadline.at, "pid": os.getpid()}


@pytest.mark.ray
def test_noise_ceiling_retrains_run_as_ray_tasks_at_once(local_ray, tmp_path) -> None:
    from odeattn.search.backends.ray import run_retrains
    from odeattn.search.trial import Deadline, Retrain
    from odeattn.study.config._load import load_study

    study = load_study(
        ROOT / "studies/lth4sa.yaml",
        backend="ray",
        pruning=None,
        runs_dir=str(tmp_path),
        ray={"cpus_per_trial": 1, "max_concurrent_trials": 2},
    )
    jobs = [Retrain(n, {"x": n}, (100 + n,), 1.0) for n in range(3)]
    got = {}
    run_retrains(
        study, jobs, Deadline(5.0e9), lambda j, o: got.update({j.number: o}), job=retrain_sleepy
    )
    assert {n: o["value"] for n, o in got.items()} == {n: 100 + n + 5.0e9 for n in range(3)}
    assert os.getpid() not in {o["pid"] for o in got.values()}  # Ray workers, not the driver


def test_storage_urls_are_resolved_and_checked(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _ray.resolve_storage_url("sqlite:///runs/a.db") == f"sqlite:///{tmp_path}/runs/a.db"
    assert _ray.resolve_storage_url("runs/j.log") == str(tmp_path / "runs/j.log")
    pg = "postgresql+psycopg2://u@127.0.0.1:5432/db"
    assert _ray.resolve_storage_url(pg, cluster=True) == pg
    for bad in ("", ":memory:", "sqlite:///:memory:"):
        with pytest.raises(ValueError, match="worker processes"):
            _ray.resolve_storage_url(bad)
    with pytest.raises(ValueError, match="postgresql"):
        _ray.resolve_storage_url("sqlite:///a.db", cluster=True)


def test_bad_arguments_name_the_fix(tmp_path) -> None:
    kw = dict(study_name="s", space=None, n_trials=1, sample_fn=sample_fixed, trial_fn=trial_sleepy)
    with pytest.raises(ValueError, match="did you mean 'asha'"):
        _ray.run({}, str(tmp_path / "j"), objectives=[("loss", "minimize")], scheduler="ashа", **kw)
    with pytest.raises(ValueError, match="maximize"):
        _ray.run({}, str(tmp_path / "j"), objectives=[("loss", "min")], **kw)
    with pytest.raises(ValueError, match="n_trials"):
        _ray.run(
            {}, str(tmp_path / "j"), objectives=[("loss", "minimize")], **{**kw, "n_trials": -1}
        )
    assert not (tmp_path / "j").exists()  # nothing written


def test_odeattn_works_without_ray(tmp_path) -> None:
    script = textwrap.dedent(f"""
        import sys
        sys.modules["ray"] = None  # `import ray` raises ImportError, as if it were not installed
        import odeattn, odeattn.proxies, odeattn.search, odeattn.search.backends.ray._tune as r
        import odeattn.study.config._study
        assert "ray" not in [m for m in sys.modules if sys.modules[m] is not None], "ray imported"
        assert r.ray_available() is False
        try:
            r.run({{}}, {str(tmp_path / "j.log")!r}, study_name="s", objectives=[("a", "maximize")],
                  space=None, n_trials=1, sample_fn=print, trial_fn=print)
        except ImportError as exc:
            assert "odeattn[ray]" in str(exc), exc
        else:
            raise SystemExit("no ImportError")
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
    assert not (tmp_path / "j.log").exists()


def test_outcome_maps_results_to_optuna_states() -> None:
    pytest.importorskip("ray")
    from odeattn.search.backends.ray._searcher import outcome
    from odeattn.search.backends.ray._worker import ERROR, FINAL, PRUNED

    S = optuna.trial.TrialState
    final = {FINAL: 1.0, PRUNED: 0.0, "a": 0.5, "b": 2.0}
    assert outcome(final, ["a", "b"]) == ([0.5, 2.0], S.COMPLETE, "")
    assert outcome({**final, "screened_out": 1.0}, ["a"]) == (None, S.PRUNED, "")
    assert outcome({**final, PRUNED: 1.0}, ["a"]) == (None, S.PRUNED, "")  # stopped by ASHA
    assert outcome({ERROR: "ValueError: diverged"}, ["a"]) == (None, S.FAIL, "ValueError: diverged")
    values, state, why = outcome({**final, "b": float("nan")}, ["a", "b"])
    assert (values, state) == (None, S.FAIL) and why == "non-finite objective values [0.5, nan]"


def test_asha_rule_and_rungs() -> None:
    from odeattn.search.backends.ray._worker import asha_stops, rungs

    assert rungs(3, 2, 3) == [2] and rungs(10, 1, 3) == [1, 3, 9] and rungs(2, 2, 3) == []
    assert asha_stops(0.5, [0.5, 0.9, 0.8], "max", 2) is True  # below the median
    assert asha_stops(0.9, [0.5, 0.9, 0.8], "max", 2) is False
    assert asha_stops(10.0, [1.0, 10.0], "min", 2) is True
    assert asha_stops(float("nan"), [1.0], "min", 2) is True  # a diverged value stops
    assert asha_stops(1.0, [1.0], "min", 3) is False  # alone at its rung: continue


def test_run_ray_maps_the_study_file_and_the_remaining_budget(tmp_path, monkeypatch) -> None:
    pytest.importorskip("odeattn.search.backends.optuna._worker")
    from odeattn.search.backends.ray import _study as _ray_study
    from odeattn.study.config._load import load_study

    ray_cfg = {
        "scheduler": "asha",
        "cpus_per_trial": 0.5,
        "gpus_per_trial": 0.25,
        "max_concurrent_trials": 3,
        "max_failures": 2,
        "asha": {"grace_period": 2},
    }
    study = load_study(
        ROOT / "studies/lth4sa.yaml",
        backend="ray",
        pruning=None,
        n_trials=5,
        runs_dir=str(tmp_path),
        ray=ray_cfg,
    )
    url = str(tmp_path / "j.log")
    s = optuna.create_study(
        study_name=study.name, storage=_ray.open_storage(url), directions=study.directions
    )
    s.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    s.add_trial(optuna.trial.create_trial(values=[0.5, 1.0, 2.0]))
    seen = {}
    monkeypatch.setattr(
        _ray, "run", lambda cfg, storage, **kw: seen.update(kw, cfg=cfg, url=storage)
    )
    _ray_study.run_ray(study, "SPACE", url)
    assert seen["cfg"] is study and seen["url"] == url and seen["study_name"] == "lth4sa"
    assert seen["n_trials"] == 5  # the study total: the searcher counts what is there
    assert seen["objectives"] == [
        ("val_accuracy", "maximize"),
        ("tns", "maximize"),
        ("attention_blocks", "minimize"),
    ]
    assert (seen["cpus_per_trial"], seen["gpus_per_trial"], seen["max_concurrent"]) == (
        0.5,
        0.25,
        3,
    )
    assert (seen["scheduler"], seen["grace_period"], seen["max_failures"]) == ("asha", 2, 2)
    assert seen["max_epochs"] == study.train.epochs and seen["scheduler_metric"] is None
    assert seen["storage_path"] == study.run_dir / "ray" and seen["space"] == "SPACE"
    assert isinstance(seen["trial_fn"], _ray_study.StudyTrial) and seen["trial_fn"].space == "SPACE"
    assert seen["sample_fn"] is _ray_study.study_sample
    assert seen["timeout"] is None  # no budget.timeout: no deadline
    from odeattn.search.trial import Deadline, _deadline

    monkeypatch.setattr(_deadline, "clock", lambda: 1000.0)
    _ray_study.run_ray(study, "SPACE", url, deadline=Deadline(1042.0))
    assert seen["timeout"] == 42.0  # the invocation's T, as seconds left


@pytest.mark.ray
@pytest.mark.slow
def test_cli_ray_backend_end_to_end(tmp_path) -> None:
    """`python -m odeattn.search` with backend ray: 2 real digits trials, 2 at once, in the study."""
    pytest.importorskip("ray")
    import yaml

    d = yaml.safe_load((ROOT / "studies/lth4sa.yaml").read_text())
    d.pop("pruning", None)
    d.update(search_space=str(ROOT / "search_spaces/lth4sa_placement.yaml"), backend="ray")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(d))
    cmd = [
        sys.executable,
        "-m",
        "odeattn.search",
        str(tmp_path / "s.yaml"),
        "--n-trials",
        "2",
        "--epochs",
        "1",
        "--runs-dir",
        "runs",
        "--quiet",
    ]  # relative: the driver's cwd
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    url = f"sqlite:///{tmp_path / 'runs' / d['name'] / 'study.db'}"
    trials = optuna.load_study(study_name=d["name"], storage=url).get_trials()
    assert len(trials) == 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:
        assert len(t.values) == 3 and 0.0 <= t.values[0] <= 1.0
        assert t.values[2] == t.user_attrs.get("attention_blocks", t.values[2])
        assert "odeattn_pid" in t.user_attrs and t.user_attrs["intermediate"]["val_accuracy"]
    assert list((tmp_path / "runs" / d["name"] / "ray").iterdir())  # Tune results under run_dir
    store = tmp_path / "runs" / d["name"] / "artifacts"  # the study's store, not Tune's trial dir
    storage = optuna.storages.RDBStorage(url)
    for t in trials:  # every Ray trial uploaded its artifacts there (Optuna names them by id)
        metas = optuna.artifacts.get_all_artifact_meta(t, storage=storage)
        assert metas and all((store / m.artifact_id).is_file() for m in metas)
