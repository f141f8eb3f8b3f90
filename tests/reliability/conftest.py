"""Helpers of the reliability suite: real ``python -m odeattn.search`` processes, real signals,
the storage read back with Optuna's public API afterwards.

The study is the embedded lth4sa (digits, CPU) without the median pruner (so every trial's outcome
is known), with few epochs; each test runs it in its own ``tmp_path``.

Storage faults (issue 18) use the real thing: a PostgreSQL server the test stops and starts
(:func:`pg_server`), a small tmpfs mounted for the test and filled up (:func:`small_fs`,
:func:`fill`), and a process without root's override of file permissions (:data:`NO_OVERRIDE`:
``setpriv`` drops ``CAP_DAC_OVERRIDE``), so ``chmod`` binds it as it binds any user.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the PostgreSQL fixture of tests/test_postgres.py

from test_postgres import _as, _free_port, _os_user, _pg_bin, pg_url  # noqa: E402,F401

ENV = {
    **os.environ,
    "PYTHONPATH": str(ROOT),
    "ODEATTN_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
}


def study_file(tmp: Path, *, n_trials: int, epochs: int, **extra: Any) -> Path:
    """lth4sa (placement space) without pruning, replicates, noise ceiling or accuracy floor,
    ``n_trials`` trials of ``epochs`` epochs, written under ``tmp`` (at 1–2 epochs no network
    reaches the shipped 0.9 floor, and these tests are about faults, not the front)."""
    d = yaml.safe_load((ROOT / "studies/lth4sa.yaml").read_text())
    for key in ("pruning", "replicates", "noise", "measure", "constraints"):  # one seed, no rerun
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


def cli(
    *args: str, cwd: Path, prefix: tuple[str, ...] = (), **kw: Any
) -> subprocess.CompletedProcess:
    """``python -m odeattn.search ARGS`` to its end (``prefix``: e.g. :data:`NO_OVERRIDE`)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "odeattn.search", *args],
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


# root ignores file modes (CAP_DAC_OVERRIDE); without it chmod binds root like any user
NO_OVERRIDE = (
    ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--")
    if os.geteuid() == 0
    else ()
)


def needs_no_override() -> None:
    if NO_OVERRIDE and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file modes cannot bind the search")


@pytest.fixture
def small_fs(tmp_path: Path) -> Any:
    """A 16 MiB tmpfs mounted at ``tmp_path/fs`` for the test (a real filesystem that fills up)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(fs: Path) -> Path:
    """Write zeros into ``fs/filler`` until the filesystem is full (ENOSPC); the filler."""
    filler = fs / "filler"
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(b"\0" * 65536)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
        for size in (4096, 512, 1):  # the last partial blocks too
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break
    assert os.statvfs(fs).f_bavail == 0
    return filler


class PgServer:
    """A throw-away PostgreSQL on 127.0.0.1 that the test stops and starts (``pg_ctl``)."""

    def __init__(self) -> None:
        pytest.importorskip("psycopg2")
        self.bin = _pg_bin()
        if self.bin is None:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.user = _os_user()
        self.root = Path(tempfile.mkdtemp(prefix="odeattn-pg-"))
        if self.user is not None:
            shutil.chown(self.root, self.user)
        self.port = _free_port()
        self._run(
            "initdb", "-D", str(self.root / "data"), "-U", "odeattn", "--auth=trust", "-E", "UTF8"
        )
        self.start()
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user="odeattn", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE optuna")
        con.close()
        # trust auth ignores the password: it is there to prove that no output shows it
        self.url = f"postgresql+psycopg2://odeattn:s3cret-pw@127.0.0.1:{self.port}/optuna"

    def _run(self, tool: str, *args: str) -> None:
        cmd = _as(self.user, [str(self.bin / tool), *args])
        subprocess.run(cmd, check=True, capture_output=True, text=True)

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        data, log = str(self.root / "data"), str(self.root / "log")
        self._run("pg_ctl", "-D", data, "-o", opts, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def pg_server() -> Any:
    server = PgServer()
    try:
        yield server
    finally:
        server.close()


def dashboard_study(storage: str, name: str = "lth4sa") -> dict[str, Any]:
    """What optuna-dashboard (a real server on 127.0.0.1) serves for study ``name``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen(
        [str(exe), storage, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def get(path: str) -> Any:
            with urllib.request.urlopen(base + path, timeout=10) as r:
                return json.loads(r.read())

        def studies() -> Any:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            try:
                return get("/api/studies")["study_summaries"]
            except OSError:
                return None

        (summary,) = [
            x for x in wait_for("optuna-dashboard", studies, 60) if x["study_name"] == name
        ]
        return get(f"/api/studies/{summary['study_id']}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
