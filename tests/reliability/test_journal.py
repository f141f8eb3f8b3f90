"""Issue 18, row 10: a torn last record of ``journal.log`` (a crash or a full disk during a write).

Before the fix the re-run appended after the torn bytes, crashed with ``JSONDecodeError``, and
from then on neither Optuna nor optuna-dashboard could open the study. Now the re-run cuts the
torn record off (the original file kept next to it, one warning naming both), re-queues the trial
the crash cut short, ends at the exact budget, and optuna-dashboard serves the study.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import (
    cli,
    counted,
    dashboard_study,
    fill,
    kill_group,
    launch,
    running_trained,
    storage_of,
    study_file,
    trials,
    wait_for,
)

pytestmark = pytest.mark.slow


def _lines(text: str, kind: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(f"{kind}:")]


def _finished_at_budget(journal: Path, victim: int, budget: int) -> list:
    storage_of.cache_clear()  # read the repaired file afresh
    ts = trials(str(journal))
    assert [t.state.name for t in ts].count("COMPLETE") == budget and counted(ts) == budget
    assert "RUNNING" not in {t.state.name for t in ts}
    assert ts[victim].state.name == "FAIL" and ts[victim].user_attrs["odeattn_stale"] is True
    (retry,) = [t for t in ts if t.user_attrs.get("odeattn_retry_of") == victim]
    assert retry.state.name == "COMPLETE" and retry.params == ts[victim].params
    served = dashboard_study(str(journal))  # optuna-dashboard opens the study
    assert [t["number"] for t in served["trials"]] == [t.number for t in ts]
    return ts


def _check_repaired(r, journal: Path, torn: bytes) -> None:
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    (backup,) = journal.parent.glob("journal.log.torn-*.bak")
    assert backup.read_bytes() == torn  # the original, as the crash left it
    cut = len(torn) - torn.rfind(b"\n") - 1  # the bytes after the last complete record
    assert _lines(r.stderr, "warning") == [
        f"warning: {journal}: its last record was torn ({cut} "
        "bytes after the last complete record: a crash or a full disk during a write); cut off, "
        f"the original is kept as {backup}"
    ]


def test_torn_record_of_a_crash_is_cut_off_and_the_rerun_continues(tmp_path: Path) -> None:
    f = study_file(tmp_path, n_trials=2, epochs=3)
    journal = tmp_path / "runs/lth4sa/journal.log"
    args = (str(f), "--storage", str(journal), "--runs-dir", "runs", "--quiet")
    p = launch(*args, cwd=tmp_path, log=tmp_path / "a.log")
    try:
        victim = wait_for("a trial mid-training", lambda: running_trained(str(journal)))
        os.killpg(p.pid, signal.SIGKILL)  # the crash ...
        p.wait()
    finally:
        kill_group(p)
    data = journal.read_bytes()  # ... hit the last write: half of its record reached the disk
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    torn = data[: start + (len(data) - start) // 2]
    journal.write_bytes(torn)
    r = cli(*args, cwd=tmp_path, timeout=900)
    _check_repaired(r, journal, torn)
    _finished_at_budget(journal, victim.number, 2)


def test_torn_record_of_a_full_disk_is_cut_off_and_the_rerun_continues(
    tmp_path: Path, small_fs: Path
) -> None:
    f = study_file(tmp_path, n_trials=2, epochs=4)
    journal = small_fs / "journal.log"  # the journal on a filesystem that fills up mid-trial
    args = (str(f), "--storage", str(journal), "--runs-dir", "runs", "--quiet")
    p = launch(*args, cwd=tmp_path, log=tmp_path / "a.log")
    try:
        victim = wait_for("a trial mid-training", lambda: running_trained(str(journal)))
        filler = fill(small_fs)
        rc = p.wait(timeout=600)
    finally:
        kill_group(p)
    text = (tmp_path / "a.log").read_text()
    assert rc == 1 and "Traceback" not in text, text[-3000:]
    # the failed append itself, or (a batch of records torn mid-way, issue 20) the cut of its
    # torn tail when the journal is next locked, which cannot keep its copy on a full disk
    cause = (
        "cannot write it (No space left on device)",
        "its last record is torn, and it could not be cut off safely (No space left on device "
        f"while keeping a copy as {journal}.torn-",
    )
    (line,) = _lines(text, "error")
    assert line.startswith(f"error: {journal}: ") and any(c in line for c in cause), line
    assert line.endswith(
        f"trial {victim.number} left RUNNING; the next run re-queues it; fix this, then re-run "
        "the same command"
    ), line
    assert not list(small_fs.glob("journal.log.torn-*"))  # a copy that could not be kept is gone
    torn = journal.read_bytes()
    r = cli(*args, cwd=tmp_path)  # still full: refused before anything is written
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr[-3000:]
    assert f"{small_fs}: no space left on its filesystem" in r.stderr
    assert journal.read_bytes() == torn
    filler.unlink()
    r = cli(*args, cwd=tmp_path, timeout=900)
    if torn.endswith(b"\n"):  # the failed write wrote nothing (its page was exactly full)
        assert r.returncode == 0 and not _lines(r.stderr, "warning"), r.stderr[-3000:]
    else:  # the usual case: the write filled the last page and stopped mid-record
        _check_repaired(r, journal, torn)
    _finished_at_budget(journal, victim.number, 2)
