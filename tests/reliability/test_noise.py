"""Issue 18 point 4 with real processes: Ctrl-C during the noise ceiling (in this process, and with
``--workers 2``: retrains in spawned processes) is one line and exit 130, nothing half-stored (no
``noise_ceiling`` record; each finished retrain stored whole), and a re-run completes the ceiling
by training only the retrains that had not finished."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import cli, kill_group, launch, storage_of, study_file, wait_for

pytestmark = pytest.mark.slow


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name="lth4sa", storage=storage_of(url))


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_during_the_ceiling_exits_130_and_a_rerun_completes_it(
    tmp_path: Path, workers: int
) -> None:
    f = study_file(tmp_path, n_trials=4, epochs=8, workers=workers)
    store = "study.db" if workers == 1 else "journal.log"
    url = str(tmp_path / "runs/lth4sa" / store)
    url = f"sqlite:///{url}" if workers == 1 else url
    r = cli(str(f), "--runs-dir", "runs", "--quiet", cwd=tmp_path, timeout=900)  # the search
    assert r.returncode == 0, r.stderr[-3000:]
    doc = yaml.safe_load(f.read_text()) | {"noise": {"trials": 4}}
    f.write_text(yaml.safe_dump(doc))  # now with the ceiling (not part of the fingerprint)
    log = tmp_path / "log"
    p = launch(str(f), "--runs-dir", "runs", cwd=tmp_path, log=log)
    try:
        wait_for("a finished retrain", lambda: "noise ceiling: trial" in log.read_text(), 600)
        os.killpg(p.pid, signal.SIGINT)  # a terminal's Ctrl-C, mid-ceiling
        rc = p.wait(timeout=300)
    finally:
        kill_group(p)
    text = log.read_text()
    assert rc == 130 and "Traceback" not in text, text[-3000:]
    assert "interrupted; re-run the same command to continue the study" in text
    s = _study(url)
    kept = s.user_attrs.get("noise_retrains") or {}
    assert "noise_ceiling" not in s.user_attrs and 1 <= len(kept) < 4  # nothing half-stored
    assert all("value" in v and len(v["seeds"]) == 1 for v in kept.values())
    r = cli(str(f), "--runs-dir", "runs", cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    again = [ln for ln in r.stdout.splitlines() if ln.startswith("noise ceiling: trial")]
    assert len(again) == 4 - len(kept)  # only what had not finished
    assert not any(f"trial {n} again" in ln for n in kept for ln in again)
    c = _study(url).user_attrs["noise_ceiling"]
    assert (c["planned"], c["ran"]) == (4, 4) and "noise ceiling of val_accuracy" in r.stdout
