"""Issue 18, row 12: the storage's files (and the disk under them) broken by the user or the machine.

Before the fix each of these ended in a traceback whose last line named neither the file nor the
cause (and a zero-byte ``study.db`` silently became a new, empty study). Now:

* found at start (read-only runs folder or ``study.db``, a full disk, random bytes in ``study.db``
  or the journal, a zero-byte ``study.db``): exit 2, one line naming the file and the cause,
  nothing written, the file as it was;
* a disk that fills up mid-trial (under ``study.db``, or under the trial's files): exit 1, one
  line naming the file; the trial is re-queued (not counted) and the re-run, once there is space,
  ends at the exact budget.

Read-only cases run the search without root's override of file modes (``NO_OVERRIDE``), full
disks are a real 16 MiB tmpfs filled to the last byte (``small_fs``, ``fill``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import optuna
import pytest
from conftest import (
    NO_OVERRIDE,
    cli,
    counted,
    fill,
    kill_group,
    launch,
    needs_no_override,
    running_trained,
    study_file,
    trials,
    wait_for,
)

from odeattn.search.storage import make_storage

ARGS = ("--runs-dir", "runs", "--quiet")


def _one_line(r, code: int, *needles: str) -> str:
    err = r.stderr.strip()
    assert r.returncode == code, r.stderr[-3000:] + r.stdout[-2000:]
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(root.rglob("*"))
    }


def _existing_study(tmp_path: Path) -> Path:
    db = tmp_path / "runs/lth4sa/study.db"
    optuna.create_study(
        study_name="lth4sa",
        storage=make_storage(f"sqlite:///{db}"),
        directions=["maximize", "maximize", "minimize"],
    )
    return db


def test_read_only_runs_folder_is_one_line(tmp_path: Path) -> None:
    needs_no_override()
    f = study_file(tmp_path, n_trials=1, epochs=1)
    (tmp_path / "runs").mkdir(mode=0o555)
    r = cli(str(f), *ARGS, cwd=tmp_path, prefix=NO_OVERRIDE)
    _one_line(r, 2, "error: ", "storage: runs is not writable (Permission denied)")
    assert not list((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_study_db_is_one_line(tmp_path: Path, what: str) -> None:
    needs_no_override()
    f, db = study_file(tmp_path, n_trials=1, epochs=1), _existing_study(tmp_path)
    (db if what == "file" else db.parent).chmod(0o444 if what == "file" else 0o555)
    before = _tree(tmp_path / "runs")
    r = cli(str(f), *ARGS, cwd=tmp_path, prefix=NO_OVERRIDE)
    if what == "file":
        _one_line(r, 2, "storage: runs/lth4sa/study.db cannot be written (Permission denied)")
    else:
        _one_line(r, 2, "storage: runs/lth4sa is not writable (Permission denied)")
    assert _tree(tmp_path / "runs") == before


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (os.urandom(65536), "runs/lth4sa/study.db: file is not a database (SQLite)"),
        (b"", "runs/lth4sa/study.db is empty (0 bytes): not an Optuna study"),
    ],
    ids=["random-bytes", "zero-bytes"],
)
def test_scribbled_or_empty_study_db_is_refused(tmp_path: Path, content: bytes, needle) -> None:
    f, db = study_file(tmp_path, n_trials=1, epochs=1), tmp_path / "runs/lth4sa/study.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    r = cli(str(f), *ARGS, cwd=tmp_path)
    _one_line(r, 2, needle)
    assert db.read_bytes() == content


def _journal_with_trials(path: Path) -> None:
    s = optuna.create_study(study_name="lth4sa", storage=make_storage(str(path)))
    for x in range(3):
        s.enqueue_trial({"x": x})


@pytest.mark.parametrize("where", ["whole", "middle"])
def test_scribbled_journal_is_refused_with_the_line(tmp_path: Path, where: str) -> None:
    f, journal = study_file(tmp_path, n_trials=1, epochs=1), tmp_path / "j.log"
    if where == "whole":
        noise = os.urandom(8192 + 100).replace(b"\n", b"x")  # exactly two lines, the last torn
        journal.write_bytes(noise[:8192] + b"\n" + noise[8192:])
        needle = "line 1 of 2 is the first that is no journal record"
    else:  # random bytes over one record in the middle: no torn tail, real damage
        _journal_with_trials(journal)
        lines = journal.read_bytes().splitlines(keepends=True)
        lines[2] = os.urandom(len(lines[2]) - 1).replace(b"\n", b"x") + b"\n"
        journal.write_bytes(b"".join(lines))
        needle = f"line 3 of {len(lines)} is the first that is no journal record"
    content = journal.read_bytes()
    r = cli(str(f), *ARGS, "--storage", str(journal), cwd=tmp_path)
    err = _one_line(r, 2, f"storage: {journal}: ", needle, "the journal is damaged")
    assert "restore it from a backup" in err and journal.read_bytes() == content
    assert not list(tmp_path.glob("j.log.torn-*"))  # damage is not "repaired" by guessing


# ------------------------------------------------------------------- a disk that fills mid-trial
def _fill_mid_trial(tmp_path: Path, fs: Path, url: str, args: tuple) -> tuple:
    p = launch(*args, cwd=tmp_path, log=tmp_path / "a.log")
    try:
        victim = wait_for("a trial mid-training", lambda: running_trained(url))
        filler = fill(fs)
        rc = p.wait(timeout=600)
    finally:
        kill_group(p)
    return victim, filler, rc, (tmp_path / "a.log").read_text()


def _rerun_finishes(tmp_path: Path, args: tuple, url: str, victim: int, state: str) -> None:
    r = cli(*args, cwd=tmp_path, timeout=900)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    ts = trials(url)
    assert ts[victim].state.name == "FAIL" and ts[victim].user_attrs["odeattn_stale"] is True
    (retry,) = [t for t in ts if t.user_attrs.get("odeattn_retry_of") == victim]
    assert retry.state.name == "COMPLETE" and retry.params == ts[victim].params
    assert counted(ts) == 2 and [t.state.name for t in ts].count("COMPLETE") == 2
    assert "RUNNING" not in {t.state.name for t in ts}
    assert state in ("RUNNING", "FAIL")  # what the failed run could still write


@pytest.mark.slow
def test_disk_full_under_study_db_mid_trial(tmp_path: Path, small_fs: Path) -> None:
    f = study_file(tmp_path, n_trials=2, epochs=4)
    url = f"sqlite:///{small_fs}/runs/lth4sa/study.db"
    args = (str(f), "--runs-dir", str(small_fs / "runs"), "--quiet")
    victim, filler, rc, text = _fill_mid_trial(tmp_path, small_fs, url, args)
    assert rc == 1 and "Traceback" not in text, text[-3000:]
    (error,) = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert error == (
        f"error: {small_fs}/runs/lth4sa/study.db: database or disk is full (SQLite); free space on "
        f"its filesystem; trial {victim.number} left RUNNING; the next run re-queues it; fix "
        "this, then re-run the same command"
    )
    r = cli(*args, cwd=tmp_path)  # still full: refused at start
    _one_line(r, 2, f"{small_fs}/runs/lth4sa: no space left on its filesystem")
    filler.unlink()
    _rerun_finishes(tmp_path, args, url, victim.number, "RUNNING")


@pytest.mark.slow
def test_disk_full_under_the_trial_files_mid_trial(tmp_path: Path, small_fs: Path) -> None:
    # issue 18 (9): a trained trial's values are stored first; files that no longer fit are its
    # artifact_error attribute and a warning, never a lost trial; the study's own results that
    # cannot be written are one line naming the folder, exit 1; the re-run writes them
    f = study_file(tmp_path, n_trials=2, epochs=4)  # the storage elsewhere: it still takes writes
    url = f"sqlite:///{tmp_path}/study.db"
    args = (str(f), "--storage", url, "--runs-dir", str(small_fs / "runs"), "--quiet")
    victim, filler, rc, text = _fill_mid_trial(tmp_path, small_fs, url, args)
    assert rc == 1 and "Traceback" not in text, text[-3000:]
    (error,) = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert error.startswith(f"error: {small_fs}/runs/lth4sa") and "No space left" in error, error
    ts = trials(url)
    assert [t.state.name for t in ts] == ["COMPLETE", "COMPLETE"] and counted(ts) == 2
    assert "No space left" in ts[victim.number].user_attrs["artifact_error"]
    assert f"warning: trial {victim.number}: artifacts not written" in text
    filler.unlink()
    r = cli(*args, cwd=tmp_path, timeout=900)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert len(trials(url)) == 2  # nothing trained again: the results are written
