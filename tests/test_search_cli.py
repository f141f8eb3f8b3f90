"""The command line: every shipped study dry-runs (paper-scale ones on a synthetic batch when their
files are absent), and a run killed mid-trial resumes: finished trials kept, the RUNNING one failed
and re-queued with the same params."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from odeattn.search.__main__ import main
from odeattn.study.config._load import load_study

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_every_study_dry_runs(path: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ODEATTN_DATA", str(tmp_path / "no_data"))  # CIFAR files absent here
    runs = tmp_path / "runs"
    study = load_study(path)
    small = study.data.name == "digits" and study.model.name == "digits_resnet"
    n = 3 if small else 1  # paper-scale nets cost seconds per forward on this CPU
    extra = [] if small else ["--dry-run-configs", "1", "--dry-run-batch", "2"]
    assert main([str(path), "--dry-run", "--runs-dir", str(runs), *extra]) == 0
    out = capsys.readouterr().out
    assert f"{study.name}: valid" in out
    if study.data.name in ("digits", "synthetic"):
        assert "validation batch" in out
    else:
        assert "synthetic batch" in out and "data files absent" in out
    assert f"dry run: {n} sampled configurations" in out
    assert not runs.exists()  # a dry run writes nothing


def _running_with_an_epoch(db: Path) -> int | None:
    """Number of a RUNNING trial that reported an epoch, read with a read-only sqlite3 connection
    (an optuna RDBStorage here could race the child's schema creation on a fresh file)."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            row = con.execute(
                "SELECT t.number FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                "WHERE t.state = 'RUNNING' AND a.key = 'intermediate'"
            ).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else int(row[0])


def test_resume_after_a_killed_run(tmp_path: Path) -> None:
    env = {**os.environ, "ODEATTN_THREADS": "1", "MPLBACKEND": "Agg"}
    cmd = [
        sys.executable,
        "-m",
        "odeattn.search",
        "studies/lth4sa.yaml",
        "--runs-dir",
        str(tmp_path),
        "--quiet",
    ]
    db = tmp_path / "lth4sa" / "study.db"
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(
        [*cmd, "--n-trials", "1", "--epochs", "4"],  # the same plan as the re-run
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        killed = None
        while time.monotonic() < deadline and proc.poll() is None:
            killed = _running_with_an_epoch(db)
            if killed is not None:
                break
            time.sleep(0.5)
        assert killed is not None, (
            "the first trial never reported an epoch: "
            + (tmp_path / "first.log").read_text()[-3000:]
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    r = subprocess.run(
        [*cmd, "--n-trials", "1", "--epochs", "4"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    s = optuna.load_study(study_name="lth4sa", storage=f"sqlite:///{db}")
    first = s.trials[killed]
    assert first.state == TrialState.FAIL and first.user_attrs["odeattn_stale"] is True
    assert first.user_attrs["intermediate"]["val_accuracy"]  # it had trained when it was killed
    retried = [t for t in s.trials if t.user_attrs.get("odeattn_retry_of") == killed]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == first.params  # the same architecture, trained again
    assert len(s.trials) == 2  # budget 1: the stale failure does not count, its retry does
