"""Where a study lives, how many trials count toward its budget, and recovery after a crash.

Default storage under ``runs/<study>/``: ``study.db`` (SQLite) for one worker; for ``--workers N``
local processes ``journal.log`` (``JournalFileBackend``: file appends under a lock, never
"database is locked"); or any URL given with ``--storage`` (``postgresql://…`` for a cluster).

Budget: ``budget.n_trials`` is the total for the study over all invocations. Counted are
COMPLETE, PRUNED and RUNNING trials, and FAIL trials except those odeattn failed as stale or as
surplus (``odeattn_surplus``: asked by a worker after the budget was already taken, see
``_optuna._surplus``; never trained).

Resume: a trial left RUNNING by a process that no longer exists on this host (its pid and
process start time are stored in ``odeattn_pid``) is marked FAIL (``odeattn_stale``) and its
params are enqueued again (``enqueue_trial``), so the re-run trains that architecture first.
On an RDB storage (SQLite, PostgreSQL) each worker also records an Optuna heartbeat for its
running trial (every ``HEARTBEAT_INTERVAL`` s); at startup a RUNNING trial whose heartbeat is
older than ``HEARTBEAT_GRACE`` s (both can be set with the environment variables
``ODEATTN_HEARTBEAT_INTERVAL`` / ``ODEATTN_HEARTBEAT_GRACE``), on any host, is failed by ``optuna.storages.fail_stale_trials``
and re-queued the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc
import sqlalchemy.pool
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from odeattn.search.storage._optuna_private import (
    heartbeat_enabled,
    stale_trial_ids,
    storage_of,
    trial_id_of,
)
from odeattn.study.config import StudyConfig

__all__ = [
    "budget_used",
    "counts",
    "create_or_load",
    "created_by_this_launch",
    "default_storage",
    "heartbeat",
    "make_storage",
    "mark_process",
    "recover_stale",
]

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 30  # seconds between heartbeats of a running trial (RDB storages)
HEARTBEAT_GRACE = 180  # a RUNNING trial whose last heartbeat is older than this is stale
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


def make_storage(url: str) -> Any:
    """An Optuna storage for a URL (RDB, with heartbeats) or a file path (journal): one object
    (one connection pool) per process and URL, so concurrent launches stay well inside a
    server's ``max_connections``."""
    return _make_storage(os.getpid(), url)


@functools.cache
def _make_storage(pid: int, url: str) -> Any:
    """See :func:`make_storage`.

    Creating an RDB storage creates its schema on first use; concurrent first launches race on
    it (SQLite: ``UNIQUE constraint failed: alembic_version``; PostgreSQL: ``type
    "studydirection" already exists``), so the creation holds a lock: an ``flock`` on
    ``<db>.lock`` (SQLite), a session advisory lock (PostgreSQL); an integrity or "already
    exists" error during creation (another tool creating the schema) is retried.
    """
    if "://" not in url:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(url))
    kw: dict[str, Any] = {
        "heartbeat_interval": int(os.environ.get("ODEATTN_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL)),
        "grace_period": int(os.environ.get("ODEATTN_HEARTBEAT_GRACE", HEARTBEAT_GRACE)),
        "heartbeat_stale_trial_callback": _requeue_heartbeat_stale,
    }
    lock: Path | str | None = url if url.startswith("postgresql") else None
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        kw["engine_kwargs"] = {"connect_args": {"timeout": 60}}
        lock = db.with_name(db.name + ".lock")
    for attempt in range(_SCHEMA_TRIES):
        try:
            with _schema_lock(lock), warnings.catch_warnings():  # heartbeat is "experimental"
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kw)
        except sqlalchemy.exc.DatabaseError as e:  # integrity/programming/operational
            if attempt == _SCHEMA_TRIES - 1 or not _schema_race(e):  # not another creator's
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


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
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def create_or_load(storage: Any, name: str, directions: list[str]) -> optuna.Study:
    """The study; the process that creates it (of concurrent first launches exactly one) records
    itself as ``odeattn_creator`` (see :func:`created_by_this_launch`)."""
    try:
        s = optuna.create_study(study_name=name, storage=storage, directions=directions)
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=name, storage=storage)
    s.set_user_attr("odeattn_creator", process_tag())
    return s


def created_by_this_launch(s: optuna.Study) -> bool:
    """Whether this process, or its parent (a ``--workers`` child), created the study."""
    tag = s.user_attrs.get("odeattn_creator")
    if not tag or tag.rsplit(":", 2)[0] != socket.gethostname():
        return False
    return int(tag.rsplit(":", 2)[1]) in (os.getpid(), os.getppid())


def _requeue_heartbeat_stale(study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
    """``heartbeat_stale_trial_callback``: called once per trial this process failed as stale."""
    study.enqueue_trial(dict(t.params), user_attrs={"odeattn_retry_of": t.number})


class heartbeat:
    """Record Optuna heartbeats for ``trial_id`` from a daemon thread while the block runs
    (a no-op on storages without heartbeat support, e.g. the journal)."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> heartbeat:
        if heartbeat_enabled(self.storage):
            self.storage.record_heartbeat(self.trial_id)
            interval = self.storage.get_heartbeat_interval()
            self._thread = threading.Thread(
                target=self._beat,
                args=(interval,),
                daemon=True,
                name=f"odeattn-heartbeat-{self.trial_id}",
            )
            self._thread.start()
        return self

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as e:  # a transient database error must not kill the trial: say it
                log.warning("heartbeat of trial id %s not recorded: %s", self.trial_id, e)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_tag(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def mark_process(trial: optuna.Trial) -> None:
    trial.set_user_attr("odeattn_pid", process_tag())


def _alive(tag: str) -> bool:
    host, pid, start = tag.rsplit(":", 2)
    if host != socket.gethostname():
        return True  # cannot tell for another host: leave it alone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return start == "None" or _start_time(int(pid)) == start


def _heartbeat_stale(study: optuna.Study) -> list[int]:
    """Fail (``fail_stale_trials``) and re-queue RUNNING trials with a stale heartbeat, any host."""
    storage = storage_of(study)
    if not heartbeat_enabled(storage):
        return []
    ids = set(stale_trial_ids(study))
    for i in ids:  # label them while still RUNNING (a finished trial's attrs cannot be set)
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_user_attr(i, "odeattn_stale", True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # re-queues via _requeue_heartbeat_stale
    return [
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if trial_id_of(t) in ids and t.user_attrs.get("odeattn_stale")
    ]


def recover_stale(study: optuna.Study) -> list[int]:
    """Fail and re-queue RUNNING trials whose process is gone (this host: pid; any host on an RDB
    storage: stale heartbeat); returns their numbers."""
    stale = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = t.user_attrs.get("odeattn_pid")
        if tag is None or _alive(tag):
            continue
        storage_of(study).set_trial_user_attr(trial_id_of(t), "odeattn_stale", True)
        study.enqueue_trial(dict(t.params), user_attrs={"odeattn_retry_of": t.number})
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        stale.append(t.number)
    return sorted(stale + [n for n in _heartbeat_stale(study) if n not in stale])


def budget_used(study: optuna.Study) -> int:
    """Trials that count toward ``budget.n_trials`` (see the module docstring)."""
    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def counts(t: optuna.trial.FrozenTrial) -> bool:
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    return t.state == TrialState.FAIL and not (
        t.user_attrs.get("odeattn_stale")
        or t.user_attrs.get("odeattn_surplus")
        or t.user_attrs.get("odeattn_setup")  # issue 12: a set-up failure spends no budget
    )
