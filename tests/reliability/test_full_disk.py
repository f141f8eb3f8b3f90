"""Issue 18, row: a full artifacts disk after training costs no trained trial.

The artifacts folder of a real search is a 48 KiB tmpfs (a real full filesystem: ``ENOSPC``
from the kernel). Every trial trains; its values and attributes reach the storage first, the
files that no longer fit are the ``artifact_error`` attribute and one warning line each."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import optuna
import pytest
from conftest import cli, study_file
from optuna.trial import TrialState


@pytest.fixture
def tiny_disk(tmp_path: Path):
    where = tmp_path / "runs" / "lth4sa" / "artifacts"
    where.mkdir(parents=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(where)])
    if r.returncode != 0:
        pytest.skip("this machine refuses a tmpfs mount")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow
def test_a_full_artifacts_disk_loses_no_trained_trial(tmp_path: Path, tiny_disk: Path) -> None:
    f = study_file(tmp_path, n_trials=4, epochs=1)
    r = cli(str(f), "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    url = f"sqlite:///{tmp_path / 'runs/lth4sa/study.db'}"
    trials = optuna.load_study(study_name="lth4sa", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4, r.stderr[-2000:]
    failed = [t.number for t in trials if "artifact_error" in t.user_attrs]
    assert failed, "the 48 KiB disk should have filled up"
    for n in failed:
        assert f"warning: trial {n}: artifacts not written" in r.stderr
        assert "No space left" in trials[n].user_attrs["artifact_error"]
    assert all(t.user_attrs["params"] > 0 and t.values for t in trials)
    # the study's own figures no longer fit either: one line, exit 1 (output was lost)
    assert r.returncode == 1 and "No space left on device" in r.stderr, r.stderr[-2000:]
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("error:")] == [
        r.stderr.strip().splitlines()[-1]
    ]
