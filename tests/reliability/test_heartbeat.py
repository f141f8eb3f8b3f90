"""Row 20: a trial's worker killed on another host (a Ray node, a driver resumed elsewhere) is
recovered through its heartbeat alone: the pid tag names a host this process cannot inspect, so
only a stale heartbeat can show the trial is dead; then it is failed (not counted) and re-queued."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from odeattn.search.storage._storage import budget_used, make_storage, recover_stale

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    **os.environ,
    "PYTHONPATH": str(ROOT),
    "ODEATTN_HEARTBEAT_INTERVAL": "1",
    "ODEATTN_HEARTBEAT_GRACE": "3",
}

WORKER = textwrap.dedent(
    """
    import sys, time, optuna
    from odeattn.search.storage._optuna_private import storage_of, trial_id_of
    from odeattn.search.storage._storage import heartbeat, make_storage
    s = optuna.create_study(study_name="hb", storage=make_storage(sys.argv[1]),
                            load_if_exists=True)
    t = s.ask()
    t.suggest_float("x", 0.0, 1.0)
    t.set_user_attr("odeattn_pid", "node-7.cluster:4242:123")  # a worker on another host
    with heartbeat(storage_of(s), trial_id_of(t)):
        print("training", flush=True)
        time.sleep(600)
    """
)


@pytest.mark.slow
def test_trial_of_a_worker_killed_on_another_host_is_recovered_by_heartbeat(
    tmp_path: Path, monkeypatch
) -> None:
    for key in ("ODEATTN_HEARTBEAT_INTERVAL", "ODEATTN_HEARTBEAT_GRACE"):
        monkeypatch.setenv(key, ENV[key])
    url = f"sqlite:///{tmp_path}/hb.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, url], env=ENV, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "training"
        time.sleep(2.0)  # a few heartbeats
        study = optuna.load_study(study_name="hb", storage=make_storage(url))
        assert recover_stale(study) == []  # alive: fresh heartbeat, foreign pid left alone
        proc.send_signal(signal.SIGKILL)  # the node dies with its worker
        proc.wait(timeout=10)
        time.sleep(4.5)  # past the 3-s grace period
        assert recover_stale(study) == [0]
    finally:
        if proc.poll() is None:
            proc.kill()
    trials = study.get_trials(deepcopy=False)
    dead, retry = trials[0], trials[1]
    assert dead.state == TrialState.FAIL and dead.user_attrs["odeattn_stale"] is True
    assert retry.state == TrialState.WAITING  # re-queued once, with the same parameters:
    assert retry.system_attrs["fixed_params"] == dead.params
    assert retry.user_attrs.get("odeattn_retry_of") == 0
    assert len(trials) == 2 and budget_used(study) == 0  # the dead trial spends no budget
