"""Rows 5, 17 and 19 of issue 13 on a private local Ray (127.0.0.1): Ctrl-C, a Ray worker
SIGKILLed mid-trial, diverged trials — real ``python -m odeattn.search --backend ray`` processes,
the storage checked with Optuna's API afterwards; plus issue 12's shipped Ray study run past TPE's
start-up trials with ASHA on 3 objectives. Row 6 (``--timeout``) is ``test_timeout.py``, for every
backend."""

from __future__ import annotations

import importlib.util
import os
import signal
from pathlib import Path

import pytest
from conftest import (
    ROOT,
    cli,
    counted,
    kill_group,
    launch,
    pid_of,
    running_trained,
    study_file,
    trials,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.ray]
RAY = {"cpus_per_trial": 1, "max_concurrent_trials": 2}


@pytest.fixture(autouse=True)
def _needs_ray():
    if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads its environment
        pytest.skip("ray is not installed")  # (loopback only) when first imported


def _db(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'runs/lth4sa/study.db'}"


def _requeued(ts) -> list[int]:
    """Numbers of the stale (unfinished) trials, each re-queued exactly once."""
    stale = [t for t in ts if t.user_attrs.get("odeattn_stale")]
    for t in stale:
        retries = [r for r in ts if r.user_attrs.get("odeattn_retry_of") == t.number]
        assert len(retries) == 1, t.number
        assert retries[0].state.name == "WAITING" or retries[0].params == t.params
    return [t.number for t in stale]


def test_ray_ctrl_c_requeues_unfinished_trials_and_exits_130(tmp_path: Path) -> None:
    f = study_file(tmp_path, n_trials=4, epochs=3, backend="ray", ray=RAY)  # row 5
    log = tmp_path / "log"
    p = launch(str(f), "--runs-dir", "runs", cwd=tmp_path, log=log)
    try:
        wait_for("a Ray trial mid-training", lambda: running_trained(_db(tmp_path)), 600)
        os.killpg(p.pid, signal.SIGINT)  # a terminal's Ctrl-C
        rc = p.wait(timeout=300)
    finally:
        kill_group(p)
    text = log.read_text()
    assert rc == 130, text[-3000:]
    assert "interrupted; re-run the same command to continue the study" in text
    assert "Traceback" not in text, text[-3000:]
    ts = trials(_db(tmp_path))
    assert not [t for t in ts if t.state.name == "RUNNING"]
    assert _requeued(ts)  # the interrupted trials do not hold budget slots
    assert counted(ts) < 4
    r = cli(str(f), "--runs-dir", "runs", "--quiet", cwd=tmp_path, timeout=900)  # the same plan
    assert r.returncode == 0, r.stderr[-3000:]
    ts = trials(_db(tmp_path))
    assert counted(ts) == 4 and sum(t.state.name == "COMPLETE" for t in ts) == 4


def test_ray_worker_killed_mid_trial_is_requeued_and_the_budget_exact(tmp_path: Path) -> None:
    f = study_file(tmp_path, n_trials=3, epochs=3, backend="ray", ray=RAY)  # row 19, locally
    log = tmp_path / "log"
    p = launch(str(f), "--runs-dir", "runs", cwd=tmp_path, log=log)
    try:
        victim = wait_for("a Ray trial mid-training", lambda: running_trained(_db(tmp_path)), 600)
        assert pid_of(victim) != p.pid  # the trial runs in a Ray worker
        os.kill(pid_of(victim), signal.SIGKILL)
        rc = p.wait(timeout=900)
    finally:
        kill_group(p)
    text = log.read_text()
    assert rc == 0, text[-3000:]
    ts = trials(_db(tmp_path))
    assert victim.number in _requeued(ts)
    assert counted(ts) == 3 and sum(t.state.name == "COMPLETE" for t in ts) == 3


def test_ray_diverged_trials_are_one_line_each(tmp_path: Path) -> None:
    f = study_file(  # row 17: a learning rate that makes every trial diverge
        tmp_path,
        n_trials=2,
        epochs=2,
        backend="ray",
        ray=RAY,
        train={"recipe": "digits", "epochs": 2, "overrides": {"lr": 1.0e12}},
    )
    r = cli(str(f), "--runs-dir", "runs", cwd=tmp_path, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "Traceback" not in out, out[-3000:]  # every trial failed
    ts = trials(_db(tmp_path))
    assert [t.state.name for t in ts] == ["FAIL", "FAIL"]
    for t in ts:
        err = t.user_attrs["error"]
        assert len(err.splitlines()) == 1 and f"trial {t.number} fail: {err}" in out, out[-3000:]


def test_shipped_ray_study_runs_past_tpe_startup_and_reruns_cleanly(tmp_path: Path) -> None:
    """Issue 12: lth4sa_ray.yaml (TPE with 10 start-up trials, ASHA, 3 objectives) to its 12."""
    study = ROOT / "studies/lth4sa_ray.yaml"
    for _ in range(2):  # the second run finds the budget spent and exports again
        r = cli(str(study), "--runs-dir", "runs", "--quiet", cwd=tmp_path, timeout=1800)
        assert r.returncode == 0, r.stderr[-3000:]
    ts = trials(f"sqlite:///{tmp_path / 'runs/lth4sa_ray/study.db'}", "lth4sa_ray")
    assert len(ts) == 12 and counted(ts) == 12
    assert {t.state.name for t in ts} <= {"COMPLETE", "PRUNED"}
    for t in ts:  # pruned or not: the same record as an optuna-backend trial
        assert {"placement", "params", "architecture", "intermediate", "odeattn_pid"} <= set(
            t.user_attrs
        ), (t.number, sorted(t.user_attrs))
        assert t.intermediate_values == {}  # multi-objective: per-epoch values as an attribute
    assert list((tmp_path / "runs/lth4sa_ray/best").glob("*.yaml"))
    stored = [p for p in (tmp_path / "runs/lth4sa_ray/artifacts").iterdir() if p.is_file()]
    assert len(stored) >= 12  # Optuna's artifact store: at least one per trial, pruned ones too
