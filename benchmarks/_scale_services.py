"""Servers the scale benchmark starts: a throw-away PostgreSQL and the real optuna-dashboard.

PostgreSQL is started as ``tests/test_postgres.py`` starts it: ``initdb`` + ``pg_ctl`` from PATH
or ``/usr/lib/postgresql/*/bin``, listening on 127.0.0.1 only at a free port, in a temporary data
directory that is deleted afterwards; as root it runs as the ``postgres`` (or ``odeattn-pg``)
user through ``runuser``. ``fsync=off`` as in the tests (a benchmark of odeattn, not of the disk).

optuna-dashboard is the installed one (``optuna-dashboard URL --host 127.0.0.1``), read over HTTP
with the routes its web app calls: ``GET /api/studies`` (the study list), ``GET
/api/studies/<id>?after=0`` (opening a study: every trial, the best trials, the search spaces) and,
for one trial's page, the HTML ``/dashboard/studies/<id>/trials?numbers=<n>`` and the study detail
it loads (warm: the dashboard caches the trials in memory).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres(max_connections: int = 200) -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for the block; yields the database URL."""
    from test_postgres import _as, _os_user, _pg_bin  # the tests' own helpers

    bindir = _pg_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries (initdb, pg_ctl) not found")
    user = _os_user()
    root = Path(tempfile.mkdtemp(prefix="odeattn-pg-"))
    data, port = root / "data", free_port()
    if user is not None:
        shutil.chown(root, user)

    def run(cmd: list[str]) -> None:
        subprocess.run(_as(user, cmd), check=True, capture_output=True, text=True)

    run([str(bindir / "initdb"), "-D", str(data), "-U", "odeattn", "--auth=trust", "-E", "UTF8"])
    opts = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off "
        f"-c max_connections={max_connections}"
    )
    run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ]
    )
    try:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=port, user="odeattn", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE optuna")
        con.close()
        yield f"postgresql+psycopg2://odeattn@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run(
            _as(user, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def database_bytes(url: str) -> int:
    """Size of the study's storage: the SQLite or journal file, or ``pg_database_size``."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).stat().st_size
    if "://" not in url:
        return Path(url).stat().st_size
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as con:
            return int(con.execute(sqlalchemy.text("SELECT pg_database_size('optuna')")).scalar())
    finally:
        engine.dispose()


def _get(url: str, timeout: float) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def _wait(base: str, proc: subprocess.Popen, timeout: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"optuna-dashboard exited with status {proc.returncode}")
        with contextlib.suppress(OSError):
            _get(f"{base}/api/meta", 2)
            return time.perf_counter() - t0
        time.sleep(0.2)
    raise TimeoutError(f"optuna-dashboard did not answer within {timeout:.0f} s")


def dashboard_times(url: str, artifacts: Path, name: str, trial: int, timeout: float) -> dict:
    """Seconds the real optuna-dashboard takes to list studies, open ``name``, open a trial."""
    exe = Path(sys.executable).with_name("optuna-dashboard")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [str(exe), url, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--artifact-dir", str(artifacts), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    out: dict[str, Any] = {}
    try:
        out["start_s"] = _wait(base, proc, timeout)
        out["list_s"], body = _get(f"{base}/api/studies", timeout)
        sid = next(
            s["study_id"] for s in json.loads(body)["study_summaries"] if s["study_name"] == name
        )
        out["open_study_s"], body = _get(f"{base}/api/studies/{sid}?after=0", timeout)
        detail = json.loads(body)
        out["trials_served"] = len(detail["trials"])
        out["study_json_bytes"] = len(body)
        page, _ = _get(f"{base}/dashboard/studies/{sid}/trials?numbers={trial}", timeout)
        again, body = _get(f"{base}/api/studies/{sid}?after=0", timeout)
        out["trial_page_s"] = page + again
        out["trial_on_page"] = any(t["number"] == trial for t in json.loads(body)["trials"])
    except Exception as e:  # reported in the JSON, never hidden
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return out
