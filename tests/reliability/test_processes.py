"""Rows 1–4, 7, 8, 16 of issue 13 and the PostgreSQL heartbeat: real search processes, real
signals (SIGKILL, SIGINT to the process group, SIGSTOP/SIGCONT), the storage checked afterwards:
no finished trial lost or duplicated, no budget slot held by a trial without an outcome."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from conftest import (
    alive,
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

pytestmark = pytest.mark.slow
WORKERS = ("--workers", "2", "--runs-dir", "runs")  # not --quiet: the log is checked


def _states(ts) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in ts:
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def _requeued_once(ts, number: int):
    retries = [t for t in ts if t.user_attrs.get("odeattn_retry_of") == number]
    assert len(retries) == 1, [(t.number, t.state.name) for t in retries]
    if retries[0].state.name != "WAITING":  # a queued trial has no params until it is asked
        assert retries[0].params == ts[number].params
    return retries[0]


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_killed_worker_is_replaced_and_its_trial_rerun_at_once(tmp_path: Path) -> None:
    f, log = study_file(tmp_path, n_trials=3, epochs=3), tmp_path / "log"  # row 1
    url = str(tmp_path / "runs/lth4sa/journal.log")
    p = launch(str(f), *WORKERS, cwd=tmp_path, log=log)
    try:
        victim = wait_for("a worker mid-trial", lambda: running_trained(url))
        assert pid_of(victim) != p.pid  # a child's trial
        os.kill(pid_of(victim), signal.SIGKILL)
        rc = p.wait(timeout=900)
    finally:
        kill_group(p)
    text = log.read_text()
    assert rc == 0, text[-3000:]
    assert "exited with status -9" in text and "Traceback" not in text
    ts = trials(url)
    killed = ts[victim.number]
    assert killed.state.name == "FAIL" and killed.user_attrs["odeattn_stale"] is True
    assert _requeued_once(ts, victim.number).state.name == "COMPLETE"
    assert counted(ts) == 3 and _states(ts).get("COMPLETE") == 3 and "RUNNING" not in _states(ts)


def test_killed_parent_takes_its_workers_along(tmp_path: Path) -> None:
    f, log = study_file(tmp_path, n_trials=3, epochs=3), tmp_path / "log"  # row 2
    url = str(tmp_path / "runs/lth4sa/journal.log")
    p = launch(str(f), *WORKERS, cwd=tmp_path, log=log)
    try:
        wait_for("a worker mid-trial", lambda: running_trained(url))
        children = _children(p.pid)
        assert children, "no worker processes"
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        wait_for("the workers to exit", lambda: not any(alive(c) for c in children), 120)
    finally:
        kill_group(p)
    ts = trials(url)
    assert "RUNNING" not in _states(ts)  # each worker re-queued its trial on the way out
    for t in ts:
        if t.user_attrs.get("odeattn_stale"):
            _requeued_once(ts, t.number)
    r = cli(str(f), *WORKERS, cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    ts = trials(url)
    assert counted(ts) == 3 and _states(ts).get("COMPLETE") == 3


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_with_workers_is_one_line_and_requeues_once(tmp_path: Path, presses) -> None:
    f, log = study_file(tmp_path, n_trials=4, epochs=4), tmp_path / "log"  # rows 3 and 4
    url = str(tmp_path / "runs/lth4sa/journal.log")
    p = launch(str(f), *WORKERS, cwd=tmp_path, log=log)
    try:
        wait_for("a worker mid-trial", lambda: running_trained(url))
        for _ in range(presses):  # a terminal's Ctrl-C: SIGINT to the whole process group
            os.killpg(p.pid, signal.SIGINT)
            time.sleep(0.05)
        rc = p.wait(timeout=300)
    finally:
        kill_group(p)
    text = log.read_text()
    assert rc == 130, text[-3000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert text.count("interrupted; re-run the same command to continue the study") == 1
    ts = trials(url)
    assert "RUNNING" not in _states(ts)
    stale = [t for t in ts if t.user_attrs.get("odeattn_stale")]
    assert stale
    for t in stale:
        assert _requeued_once(ts, t.number).state.name == "WAITING"


def test_concurrent_first_launches_share_one_study_exactly(tmp_path: Path) -> None:
    f = study_file(tmp_path, n_trials=4, epochs=1)  # rows 7 and 8: 4 launches at once
    url = f"sqlite:///{tmp_path / 'runs/lth4sa/study.db'}"
    logs = [tmp_path / f"log{i}" for i in range(4)]
    procs = [launch(str(f), "--runs-dir", "runs", "--quiet", cwd=tmp_path, log=lg) for lg in logs]
    try:
        codes = [p.wait(timeout=900) for p in procs]
    finally:
        for p in procs:
            kill_group(p)
    assert codes == [0, 0, 0, 0], [lg.read_text()[-2000:] for lg in logs]
    ts = trials(url)
    done = [t for t in ts if t.state.name == "COMPLETE"]
    assert len(done) == 4 and counted(ts) == 4  # surplus asks are FAIL, not counted
    assert all(t.user_attrs.get("odeattn_surplus") for t in ts if t.state.name == "FAIL")
    # one random stream per launch: with a shared stream all four would train one architecture
    assert len({tuple(sorted(t.params.items())) for t in done}) == 4


def test_stalled_worker_resumes_without_a_traceback(tmp_path: Path) -> None:
    f = study_file(tmp_path, n_trials=2, epochs=4)  # row 16: SIGSTOP past the heartbeat grace
    url = f"sqlite:///{tmp_path / 'runs/lth4sa/study.db'}"
    env = {"ODEATTN_HEARTBEAT_INTERVAL": "1", "ODEATTN_HEARTBEAT_GRACE": "4"}
    args = (str(f), "--runs-dir", "runs", "--quiet")
    a = launch(*args, cwd=tmp_path, log=tmp_path / "a.log", env=env)
    try:
        victim = wait_for("a trial mid-training", lambda: running_trained(url))
        os.kill(a.pid, signal.SIGSTOP)
        time.sleep(6)  # past the grace: its heartbeat is stale
        r = cli(*args, cwd=tmp_path, env=env, timeout=900)  # recovers it and runs the budget
        os.kill(a.pid, signal.SIGCONT)
        rc = a.wait(timeout=900)
    finally:
        os.kill(a.pid, signal.SIGCONT) if a.poll() is None else None
        kill_group(a)
    text = (tmp_path / "a.log").read_text()
    assert r.returncode == 0, r.stderr[-3000:]
    assert rc == 0 and "Traceback" not in text, text[-3000:]
    assert "failed by another one while it stalled" in text
    ts = trials(url)
    assert ts[victim.number].state.name == "FAIL" and ts[victim.number].user_attrs["odeattn_stale"]
    assert _requeued_once(ts, victim.number).state.name == "COMPLETE"
    assert counted(ts) == 2 and "RUNNING" not in _states(ts)


@pytest.mark.postgres
def test_two_cli_processes_on_postgres_one_killed_the_other_finishes(tmp_path, pg_url) -> None:
    f = study_file(tmp_path, n_trials=3, epochs=3)  # any host: recovery through the heartbeat
    env = {"ODEATTN_HEARTBEAT_INTERVAL": "1", "ODEATTN_HEARTBEAT_GRACE": "4"}
    args = (str(f), "--storage", pg_url, "--runs-dir", "runs", "--quiet")
    a = launch(*args, cwd=tmp_path, log=tmp_path / "a.log", env=env)
    b = launch(*args, cwd=tmp_path, log=tmp_path / "b.log", env=env)
    try:
        victim = wait_for("a trial mid-training", lambda: running_trained(pg_url))
        loser = a if pid_of(victim) == a.pid else b
        winner = b if loser is a else a
        os.kill(loser.pid, signal.SIGKILL)
        rc = winner.wait(timeout=900)
    finally:
        kill_group(a)
        kill_group(b)
    assert rc == 0, (tmp_path / ("a.log" if winner is a else "b.log")).read_text()[-3000:]
    ts = trials(pg_url)
    assert ts[victim.number].state.name == "FAIL" and ts[victim.number].user_attrs["odeattn_stale"]
    assert _requeued_once(ts, victim.number).state.name == "COMPLETE"
    assert counted(ts) == 3 and _states(ts).get("COMPLETE") == 3
