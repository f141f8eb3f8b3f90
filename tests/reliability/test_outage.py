"""Issue 18, row 11: the PostgreSQL server stopped (``pg_ctl stop -m fast``) in the middle of a trial.

Before the fix: no retry, six tracebacks ending in Optuna's misleading "invalid data … exceeding
max length", the trial left RUNNING, once exit 0 with the slot lost. Now every database call waits
the outage out (one warning line, backoff) for ``ODEATTN_STORAGE_RETRY_S`` seconds; past that the
search stops with one line naming the storage (password hidden) and exit 1, and the re-run
re-queues the trial it cut short. The password in the URL never appears in any output.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from conftest import cli, counted, kill_group, launch, running_trained, study_file, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _lines(text: str, kind: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(f"{kind}:")]


def _shown(url: str) -> str:
    return url.replace(":s3cret-pw@", ":***@")


def _stop_mid_trial(pg_server, tmp_path: Path, env: dict[str, str]) -> tuple:
    f = study_file(tmp_path, n_trials=2, epochs=4)
    args = (str(f), "--storage", pg_server.url, "--runs-dir", "runs", "--quiet")
    p = launch(*args, cwd=tmp_path, log=tmp_path / "a.log", env=env)
    victim = wait_for("a trial mid-training", lambda: running_trained(pg_server.url))
    pg_server.stop()  # fast shutdown: every session is cut off at once
    return p, args, victim


def _read(url: str) -> list:
    import optuna

    storage = optuna.storages.RDBStorage(url)
    try:
        return optuna.load_study(study_name="lth4sa", storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def _rerun_requeues(pg_server, args: tuple, tmp_path: Path, victim) -> None:
    """The server back, the same command again: the cut trial is failed as stale and its
    configuration re-queued and trained; the exact budget (2), nothing RUNNING."""
    pg_server.start()
    r = cli(*args, cwd=tmp_path, timeout=900)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    ts = _read(pg_server.url)
    assert ts[victim.number].state.name == "FAIL" and ts[victim.number].user_attrs["odeattn_stale"]
    (retry,) = [t for t in ts if t.user_attrs.get("odeattn_retry_of") == victim.number]
    assert retry.state.name == "COMPLETE" and retry.params == ts[victim.number].params
    assert counted(ts) == 2 and [t.state.name for t in ts].count("COMPLETE") == 2
    assert "RUNNING" not in {t.state.name for t in ts}


def test_server_away_for_15_s_mid_trial_is_waited_out(pg_server, tmp_path: Path) -> None:
    p, _, victim = _stop_mid_trial(pg_server, tmp_path, {})
    try:
        time.sleep(15)
        pg_server.start()
        rc = p.wait(timeout=900)
    finally:
        kill_group(p)
    text = (tmp_path / "a.log").read_text()
    assert rc == 0 and "Traceback" not in text, text[-3000:]
    assert "s3cret-pw" not in text
    (warning,) = _lines(text, "warning")  # one line for the one outage
    assert warning.startswith(f"warning: storage {_shown(pg_server.url)} unreachable (")
    assert warning.endswith("retrying for up to 120 s (ODEATTN_STORAGE_RETRY_S)")
    ts = _read(pg_server.url)  # the exact budget, nothing RUNNING, nothing twice
    assert [t.state.name for t in ts] == ["COMPLETE", "COMPLETE"], [t.state.name for t in ts]
    assert ts[victim.number].user_attrs["epochs_run"] == 4  # the cut trial trained on to the end
    assert not any(t.user_attrs.get("odeattn_stale") for t in ts)


def test_server_away_past_the_retry_time_is_one_line_and_the_rerun_continues(
    pg_server, tmp_path: Path
) -> None:
    env = {"ODEATTN_STORAGE_RETRY_S": "5"}
    p, args, victim = _stop_mid_trial(pg_server, tmp_path, env)
    try:
        rc = p.wait(timeout=600)
    finally:
        kill_group(p)
    text = (tmp_path / "a.log").read_text()
    assert rc == 1 and "Traceback" not in text and "s3cret-pw" not in text, text[-3000:]
    shown = _shown(pg_server.url)
    assert len(_lines(text, "warning")) == 1
    (error,) = _lines(text, "error")
    assert error.startswith(f"error: storage {shown} unreachable for ")
    assert ", longer than ODEATTN_STORAGE_RETRY_S=5: connection to server at" in error
    assert error.endswith(
        f"; trial {victim.number} left RUNNING; the next run re-queues it; fix this, then re-run "
        "the same command"
    )
    _rerun_requeues(pg_server, args, tmp_path, victim)


def test_ctrl_c_while_the_server_is_away_exits_130_and_the_rerun_continues(
    pg_server, tmp_path: Path
) -> None:
    """Ctrl-C during the outage wait: the interrupted trial cannot be given back (the server is
    away), so it stays RUNNING; that is an interrupt, not lost work — exit 130 and the resume
    hint (was: exit 1), and the re-run re-queues the trial."""
    p, args, victim = _stop_mid_trial(pg_server, tmp_path, {})  # 120 s retry: still waiting
    log = tmp_path / "a.log"
    try:
        wait_for("the outage warning", lambda: _lines(log.read_text(), "warning"))
        os.killpg(p.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole process group
        rc = p.wait(timeout=300)
    finally:
        kill_group(p)
    text = log.read_text()
    assert rc == 130, text[-3000:]
    assert "Traceback" not in text and "s3cret-pw" not in text, text[-3000:]
    assert text.count("interrupted; re-run the same command to continue the study") == 1
    (error,) = _lines(text, "error")  # what could not be done, not "the retry time ran out"
    assert error.startswith(f"error: storage {_shown(pg_server.url)} unreachable at the interrupt")
    assert error.endswith(f"; trial {victim.number} left RUNNING; the next run re-queues it; "
                          "fix this, then re-run the same command")  # fmt: skip
    _rerun_requeues(pg_server, args, tmp_path, victim)
