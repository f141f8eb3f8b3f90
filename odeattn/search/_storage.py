"""Where a study lives, how many trials count toward its budget, and recovery after a crash.

Default storage under ``runs/<study>/``: ``study.db`` (SQLite) for one worker; for ``--workers N``
local processes ``journal.log`` (``JournalFileBackend``: file appends under a lock, never
"database is locked"); or any URL given with ``--storage`` (``postgresql://…`` for a cluster).

Budget: ``budget.n_trials`` is the total for the study over all invocations. Counted are
COMPLETE, PRUNED and RUNNING trials, and FAIL trials except those odeattn failed as stale.

Resume: a trial left RUNNING by a process that no longer exists on this host (its pid and
process start time are stored in ``odeattn_pid``) is marked FAIL (``odeattn_stale``) and its
params are enqueued again (``enqueue_trial``), so the re-run trains that architecture first.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from odeattn.config import StudyConfig

__all__ = ["budget_used", "default_storage", "make_storage", "mark_process", "recover_stale"]


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
    """An Optuna storage for a URL (RDB) or a file path (journal)."""
    if "://" not in url:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(url))
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.RDBStorage(url)


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


def recover_stale(study: optuna.Study) -> list[int]:
    """Fail and re-queue RUNNING trials whose process is gone; returns their numbers."""
    stale = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = t.user_attrs.get("odeattn_pid")
        if tag is None or _alive(tag):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "odeattn_stale", True)
        study.enqueue_trial(dict(t.params), user_attrs={"odeattn_retry_of": t.number})
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        stale.append(t.number)
    return stale


def budget_used(study: optuna.Study) -> int:
    """Trials that count toward ``budget.n_trials`` (see the module docstring)."""
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return sum(t.state in counted or (t.state == TrialState.FAIL and not t.user_attrs.get("odeattn_stale"))
               for t in study.get_trials(deepcopy=False))
