"""How many trials count toward a study's budget, and recovery after a crash.

Where a study lives and how its storage is opened: ``_open``.

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
``ODEATTN_HEARTBEAT_INTERVAL`` / ``ODEATTN_HEARTBEAT_GRACE``), on any host, is failed by
``optuna.storages.fail_stale_trials`` and re-queued the same way.

Exactly once: processes recover at the same moment (every launch at start-up, a waiting one each
second), so a stale trial is first *failed* — a storage-side check-and-set of which exactly one
process wins (PostgreSQL: ``SELECT … FOR UPDATE``; journal: the order of the log; the loser gets
``UpdateFinishedTrialError``) — and only the winner re-queues it. SQLite's check-and-set is no
such lock (the check reads outside the writing transaction), so there recovery also holds the
``flock`` on ``<db>.lock``. A trial cut short by a storage or disk fault is given back the same
way (:func:`give_back`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from odeattn.search.storage._faults import StorageFault
from odeattn.search.storage._guarded import GuardedStorage
from odeattn.search.storage._open import (
    HEARTBEAT_GRACE,
    HEARTBEAT_INTERVAL,
    make_storage,
    requeued_here,
    storage_lock,
)
from odeattn.search.storage._optuna_private import (
    backend_of,
    heartbeat_enabled,
    stale_trial_ids,
    storage_of,
    trial_id_of,
)

__all__ = [
    "HEARTBEAT_GRACE",
    "HEARTBEAT_INTERVAL",
    "budget_used",
    "counts",
    "create_or_load",
    "created_by_this_launch",
    "disk_fault",
    "give_back",
    "heartbeat",
    "make_storage",
    "mark_process",
    "recover_stale",
]

log = logging.getLogger(__name__)

# OSError numbers that say the disk or its permissions failed, not the trial
_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


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
            except StorageFault:  # the storage's fault: said once, by whoever hit it first
                continue
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


def _recovery_lock(study: optuna.Study) -> Any:
    """The flock on ``<db>.lock`` for an SQLite storage (see the module docstring), else none."""
    backend = backend_of(storage_of(study))
    db = backend.sqlite_file if isinstance(backend, GuardedStorage) else None
    return storage_lock(db.with_name(db.name + ".lock") if db is not None else None)


def _fail_once(study: optuna.Study, trial_id: int, key: str = "odeattn_stale") -> bool:
    """Label the RUNNING trial ``key`` and fail it; True only in the one process whose fail took
    effect (the others find it finished: ``UpdateFinishedTrialError``)."""
    storage = storage_of(study)
    try:
        storage.set_trial_user_attr(trial_id, key, True)  # while RUNNING: later it is frozen
        return bool(storage.set_trial_state_values(trial_id, TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def _requeue(study: optuna.Study, params: dict[str, Any], number: int) -> None:
    study.enqueue_trial(dict(params), user_attrs={"odeattn_retry_of": number})


def _heartbeat_stale(study: optuna.Study) -> list[int]:
    """Fail (``fail_stale_trials``: fail first, the winner's callback re-queues) RUNNING trials
    with a stale heartbeat, any host; the numbers this process re-queued."""
    storage = storage_of(study)
    if not heartbeat_enabled(storage):
        return []
    for i in stale_trial_ids(study):  # label them while still RUNNING (then attrs are frozen)
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_user_attr(i, "odeattn_stale", True)
    with warnings.catch_warnings(), requeued_here() as got:
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # re-queues via _requeue_heartbeat_stale
    return got


def recover_stale(study: optuna.Study) -> list[int]:
    """Fail and re-queue RUNNING trials whose process is gone (this host: pid; any host on an RDB
    storage: stale heartbeat); returns the numbers *this* process re-queued (each stale trial is
    re-queued by exactly one process, see the module docstring)."""
    stale = []
    with _recovery_lock(study):
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            tag = t.user_attrs.get("odeattn_pid")
            if tag is None or _alive(tag) or not _fail_once(study, trial_id_of(t)):
                continue
            _requeue(study, t.params, t.number)  # only after this process's fail took effect
            stale.append(t.number)
        return sorted(stale + [n for n in _heartbeat_stale(study) if n not in stale])


def disk_fault(e: OSError, folder: Path) -> StorageFault | None:
    """``e`` in one line if it is the disk's or its permissions' fault (full, read-only), not the
    trial's (``folder``: where the trial writes its files, named when ``e`` names no file)."""
    if e.errno not in _DISK:
        return None
    return StorageFault(f"{e.filename or folder}: {e.strerror} (writing the trial's files)")


def give_back(study: optuna.Study, trial: optuna.Trial, e: StorageFault) -> StorageFault:
    """A trial cut short by a storage or disk fault: failed as stale and re-queued (not counted)
    if the storage still takes writes, else left RUNNING for the next run's recovery (its process
    is gone by then); the one-line error to stop with (exit 1)."""
    try:
        done = _fail_once(study, trial_id_of(trial))
        if done:
            _requeue(study, trial.params, trial.number)
        then = "re-queued" if done else "finished by another process"
    except StorageFault:  # the storage takes no writes now: recovered when the study reopens
        then = "left RUNNING; the next run re-queues it"
    return StorageFault(f"{e}; trial {trial.number} {then}; fix this, then re-run the same command")


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
