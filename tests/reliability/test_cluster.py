"""The README's cluster recipe, for real (rows 18–21, 24 of issue 13): ``cluster.sh`` inside a
network namespace with only loopback (``unshare --net``; its own PID namespace so ``ray stop``
touches nothing else), a local PostgreSQL, ``ray start --head --node-ip-address 127.0.0.1``,
``ray job submit -- python -m odeattn.search … --storage $ODEATTN_STORAGE``, one trial's Ray worker
SIGKILLed mid-trial; then the storage (read with Optuna's API inside the namespace), the
dashboard's answer and the listeners are checked here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, study_file

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.postgres]


def _ready() -> str | None:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare (a loopback-only network namespace)"
    ray_cli = Path(sys.executable).parent / "ray"
    if not ray_cli.exists():
        return "the ray CLI is not installed"
    probe = subprocess.run(
        [sys.executable, "-c", "import ray.dashboard.modules.job.cli, psycopg2"],
        capture_output=True,
    )
    return (
        None
        if probe.returncode == 0
        else "needs ray[default] and psycopg2 (pip install -e '.[dev]')"
    )


def test_ray_job_on_a_loopback_cluster_with_postgres(tmp_path: Path) -> None:
    why = _ready()
    if why:
        pytest.skip(why)
    f = study_file(tmp_path, n_trials=3, epochs=3, backend="ray", ray={"max_concurrent_trials": 2})
    cmd = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "bash"]
    run = subprocess.run(
        [*cmd, str(ROOT / "tests/reliability/cluster.sh"), str(tmp_path), str(f)],
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ, "PYTHON": sys.executable},
    )
    logs = {p.name: p.read_text()[-1500:] for p in tmp_path.glob("*.log")}
    assert run.returncode == 0, (run.stderr[-3000:], logs)
    result = json.loads((tmp_path / "result.json").read_text())
    killed = json.loads((tmp_path / "killed.json").read_text())["killed"]
    assert result["status"] == "SUCCEEDED", logs
    ts = result["trials"]
    # the killed trial: failed as stale (no budget slot), re-queued once, retrained to the end
    assert ts[killed]["state"] == "FAIL" and ts[killed]["stale"]
    retries = [t for t in ts if t["retry_of"] == killed]
    assert len(retries) == 1 and retries[0]["state"] == "COMPLETE"
    assert retries[0]["params"] == ts[killed]["params"]
    assert sum(t["state"] == "COMPLETE" for t in ts) == 3  # exactly the budget
    assert not [t for t in ts if t["state"] == "RUNNING"]
    assert result["dashboard_sees_study"]  # optuna-dashboard reads the database
    off = [
        a
        for a in result["listeners"]
        if not a.startswith(("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:"))
    ]
    assert not off, off  # no Ray or PostgreSQL listener off loopback
    # job outputs land under the --runs-dir every node shares, not in Ray's working-dir cache
    shared = tmp_path / "shared/runs/lth4sa"
    assert list((shared / "best").glob("*.yaml")) and (shared / "plots").is_dir()
    stored = [p for p in (shared / "artifacts").iterdir() if p.is_file()]  # Optuna's store
    assert len(stored) >= 3  # at least one artifact per completed trial
