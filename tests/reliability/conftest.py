"""Helpers of the reliability suite: real ``python -m odeattn.search`` processes, real signals,
the storage read back with Optuna's public API afterwards.

The study is the embedded lth4sa (digits, CPU) without the median pruner (so every trial's outcome
is known), with few epochs; each test runs it in its own ``tmp_path``.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the PostgreSQL fixture of tests/test_postgres.py

from test_postgres import pg_url  # noqa: E402,F401  (a fixture, used by name)

ENV = {
    **os.environ,
    "PYTHONPATH": str(ROOT),
    "ODEATTN_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
}


def study_file(tmp: Path, *, n_trials: int, epochs: int, **extra: Any) -> Path:
    """lth4sa (placement space) without pruning, replicates or noise ceiling, ``n_trials`` trials
    of ``epochs`` epochs, written under ``tmp``."""
    d = yaml.safe_load((ROOT / "studies/lth4sa.yaml").read_text())
    for key in ("pruning", "replicates", "noise", "measure"):  # one seed, no noise-ceiling rerun
        d.pop(key, None)
    d["noise"] = {"trials": 0}
    d["measure"] = {"samples": 64, "batch": 32}
    d["search_space"] = str(ROOT / "search_spaces/lth4sa_placement.yaml")
    d["budget"] = {"n_trials": n_trials}
    d["train"] = {**d["train"], "epochs": epochs}
    d.update(extra)
    path = tmp / f"{d['name']}.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def cli(*args: str, cwd: Path, **kw: Any) -> subprocess.CompletedProcess:
    """``python -m odeattn.search ARGS`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "odeattn.search", *args],
        cwd=cwd,
        env={**ENV, **kw.pop("env", {})},
        capture_output=True,
        text=True,
        timeout=kw.pop("timeout", 600),
    )


def launch(*args: str, cwd: Path, log: Path, **popen: Any) -> subprocess.Popen:
    """``python -m odeattn.search ARGS`` in the background (its own session: a process group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "odeattn.search", *args],
        cwd=cwd,
        env={**ENV, **popen.pop("env", {})},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **popen,
    )


def wait_for(what: str, check: Callable[[], Any], timeout: float = 300, step: float = 0.2) -> Any:
    """Poll ``check()`` until it returns something truthy (no timed assertion: a deadline only
    turns a hang into a failure that says what was awaited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


@functools.cache
def storage_of(url: str) -> Any:
    """One storage object per URL: polling must not open a connection pool per look."""
    if "://" in url:
        return optuna.storages.RDBStorage(url)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))


def trials(url: str, name: str = "lth4sa") -> list[optuna.trial.FrozenTrial]:
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []  # not created yet: do not race the search on creating the schema
    try:
        return optuna.load_study(study_name=name, storage=storage_of(url)).get_trials()
    except KeyError:
        return []


def running_trained(url: str) -> optuna.trial.FrozenTrial | None:
    """A RUNNING trial that has reported at least one epoch (it is mid-training)."""
    try:
        for t in trials(url):
            if t.state.name == "RUNNING" and (t.user_attrs.get("intermediate") or {}):
                return t
    except Exception:  # the storage file is being written right now: look again
        return None
    return None


def pid_of(t: optuna.trial.FrozenTrial) -> int:
    return int(t.user_attrs["odeattn_pid"].rsplit(":", 2)[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()


def kill_group(p: subprocess.Popen) -> None:
    """Clean up whatever a test left running (its own process group only)."""
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def counted(ts: list[optuna.trial.FrozenTrial]) -> int:
    """What the budget counts (see odeattn.search.storage._storage)."""
    return sum(
        t.state.name in ("COMPLETE", "PRUNED", "RUNNING")
        or (
            t.state.name == "FAIL"
            and not (t.user_attrs.get("odeattn_stale") or t.user_attrs.get("odeattn_surplus"))
        )
        for t in ts
    )


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path
