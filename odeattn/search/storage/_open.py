"""Opening a study's storage: where it lives, checked writable, created once, faults in one line.

Default storage under ``runs/<study>/``: ``study.db`` (SQLite) for one worker; for ``--workers N``
local processes ``journal.log`` (``JournalFileBackend``: file appends under a lock, never
"database is locked"); or any URL given with ``--storage`` (``postgresql://…`` for a cluster).

* :func:`check_writable` (before anything is created): the storage file's folder and the run
  folder can be written (a probe file is created and removed in each, or in its nearest existing
  parent, so nothing is left), an existing file can be opened for writing, and the filesystem
  has at least :data:`MIN_FREE` bytes free; else :class:`~._faults.StorageFault`, one line.
* :func:`make_storage`: one storage object per process and URL (one connection pool, so
  concurrent launches stay inside a server's ``max_connections``). An RDB storage is a
  :class:`~._guarded.GuardedStorage` (server outages retried, SQLite faults in one line) with
  Optuna heartbeats; a journal is opened by :func:`~._journal.open_journal` (torn tail cut off).
* A new SQLite file is built next to its final name and renamed into place, so odeattn never leaves
  a zero-byte ``study.db`` (a launch killed while creating it leaves no ``study.db`` at all). A
  zero-byte ``study.db`` is therefore refused: it can only be a file that lost its content (a
  failed copy, a truncation), and opening it would silently start a new study where the user
  expects the old one (re-running a whole budget). Deleting it is the one-step fix, said.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc
import sqlalchemy.pool

from odeattn.search.storage._faults import StorageFault
from odeattn.search.storage._guarded import GuardedStorage
from odeattn.search.storage._journal import open_journal
from odeattn.study.config import StudyConfig

__all__ = [
    "HEARTBEAT_GRACE",
    "HEARTBEAT_INTERVAL",
    "MIN_FREE",
    "check_writable",
    "default_storage",
    "make_storage",
    "requeued_here",
    "storage_lock",
]

HEARTBEAT_INTERVAL = 30  # seconds between heartbeats of a running trial (RDB storages)
HEARTBEAT_GRACE = 180  # a RUNNING trial whose last heartbeat is older than this is stale
MIN_FREE = 1 << 20  # bytes a storage's filesystem must have free at start
_SCHEMA_TRIES = 5


def default_storage(study: StudyConfig, workers: int) -> str:
    """``sqlite:///runs/<name>/study.db`` or, for several workers, ``runs/<name>/journal.log``.

    A study that already exists under ``runs/<name>/`` keeps its storage file (a single-worker
    study re-run with ``--workers 2`` continues in SQLite, with a 60 s lock timeout).
    """
    if study.storage:
        return study.storage
    journal, db = study.run_dir / "journal.log", study.run_dir / "study.db"
    # an existing study is continued in the storage it lives in, whatever --workers says now
    if journal.exists() or (workers > 1 and not db.exists()):
        return str(journal)
    return f"sqlite:///{db}"


def _file_of(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None if "://" in url else Path(url)


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder`` or its nearest existing parent."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".odeattn-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise StorageFault(
            f"{folder} is not writable ({e.strerror}); make it writable, or use another "
            "--runs-dir / --storage"
        ) from None
    st = os.statvfs(folder)
    if st.f_bavail * st.f_frsize < MIN_FREE:
        raise StorageFault(
            f"{folder}: no space left on its filesystem ({st.f_bavail * st.f_frsize} bytes "
            "free); free some space and re-run"
        )


def check_writable(url: str, run_dir: Path) -> None:
    """See the module docstring; ``url`` as checked by ``check_storage_url``."""
    file = _file_of(url)
    for folder in dict.fromkeys([*([file.parent] if file else []), Path(run_dir)]):
        _probe(folder)
    if file is not None and file.exists():
        try:
            open(file, "r+b").close()  # opened for writing, nothing written
        except OSError as e:
            raise StorageFault(
                f"{file} cannot be written ({e.strerror}); make it writable "
                f"(chmod u+w {file}), or use another --storage"
            ) from None


def make_storage(url: str) -> Any:
    """An Optuna storage for a URL or a journal file path; see the module docstring."""
    try:
        return _make_storage(os.getpid(), url)
    except OSError as e:  # a folder or lock file that cannot be made
        where = f"{e.filename}: " if e.filename else ""
        raise StorageFault(f"{where}{e.strerror or e}; cannot open the storage there") from None


_HERE = threading.local()


@contextlib.contextmanager
def requeued_here() -> Any:
    """The numbers of the trials :func:`_requeue_heartbeat_stale` re-queues in this block."""
    got: list[int] = []
    _HERE.requeued = got
    try:
        yield got
    finally:
        _HERE.requeued = None


def _requeue_heartbeat_stale(study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
    """``heartbeat_stale_trial_callback``: called once per trial this process failed as stale
    (``fail_stale_trials`` fails first and calls back only for the fails that took effect)."""
    study.enqueue_trial(dict(t.params), user_attrs={"odeattn_retry_of": t.number})
    if getattr(_HERE, "requeued", None) is not None:
        _HERE.requeued.append(t.number)


@functools.cache
def _make_storage(pid: int, url: str) -> Any:
    """See :func:`make_storage`.

    Creating an RDB storage creates its schema on first use; concurrent first launches race on
    it (SQLite: ``UNIQUE constraint failed: alembic_version``; PostgreSQL: ``type
    "studydirection" already exists``), so the creation holds a lock: an ``flock`` on
    ``<db>.lock`` (SQLite), a session advisory lock (PostgreSQL); an integrity or "already
    exists" error during creation (another tool creating the schema) is retried.
    """
    file = _file_of(url)
    if "://" not in url:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return open_journal(url)
    kw: dict[str, Any] = {
        "heartbeat_interval": int(os.environ.get("ODEATTN_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL)),
        "grace_period": int(os.environ.get("ODEATTN_HEARTBEAT_GRACE", HEARTBEAT_GRACE)),
        "heartbeat_stale_trial_callback": _requeue_heartbeat_stale,
    }
    lock: Path | str | None = url if url.startswith("postgresql") else None
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        kw["engine_kwargs"] = {"connect_args": {"timeout": 60}}
        lock = file.with_name(file.name + ".lock")
    for attempt in range(_SCHEMA_TRIES):
        try:
            with _schema_lock(lock), warnings.catch_warnings():  # heartbeat is "experimental"
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if file is not None:
                    _new_sqlite(file)
                return GuardedStorage(url, **kw)
        except sqlalchemy.exc.DatabaseError as e:  # integrity/programming/operational
            if attempt == _SCHEMA_TRIES - 1 or not _schema_race(e):  # not another creator's
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _new_sqlite(db: Path) -> None:
    """A new ``db`` with Optuna's schema, built aside and renamed into place (the caller holds
    the flock); a zero-byte ``db`` is refused (see the module docstring)."""
    if db.exists():
        if db.stat().st_size == 0:
            raise StorageFault(
                f"{db} is empty (0 bytes): not an Optuna study, though odeattn never leaves one "
                "empty; if it held a study, restore it from a backup; to start a new study, "
                "delete it"
            )
        return
    tmp = db.with_name(f"{db.name}.{os.getpid()}.creating")  # under the flock: one at a time
    os.close(os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o666))  # mode as SQLite's
    try:
        engine = {"poolclass": sqlalchemy.pool.NullPool}  # no connection outlives the build
        GuardedStorage(f"sqlite:///{tmp}", engine_kwargs=engine)
        os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)


def _schema_race(e: Exception) -> bool:
    text = str(e).lower()
    return isinstance(e, sqlalchemy.exc.IntegrityError) or "already exists" in text


@contextlib.contextmanager
def _schema_lock(lock: Path | str | None) -> Any:
    """Serialise schema creation: flock on a file path, advisory lock on a PostgreSQL URL."""
    if lock is None:
        yield
        return
    if isinstance(lock, str):
        engine = sqlalchemy.create_engine(lock, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as con:
                con.execute(sqlalchemy.text("SELECT pg_advisory_lock(7101968)"))  # "odeattn"
                try:
                    yield
                finally:
                    con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(7101968)"))
        finally:
            engine.dispose()
        return
    with storage_lock(lock):
        yield


@contextlib.contextmanager
def storage_lock(lock: Path | None) -> Any:
    """An exclusive ``flock`` on ``lock`` while the block runs (nothing for ``None``)."""
    if lock is None:
        yield
        return
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
