"""A study's lock: a block that runs in one process (and one thread) at a time per study.

What it is for: a check-then-write that must not interleave with another process's, here the
claim of a configuration's training (``backends.optuna._duplicate.claim``: look for a trial that
holds or trains the same params, else mark this one as training them). Every storage offers it:

* SQLite: an ``flock`` on ``<db>.lock`` (the file schema creation and recovery lock; flocks
  belong to an open file, so two threads of one process exclude each other too);
* a journal file: an ``flock`` on ``<journal>.odeattn.lock`` (not ``<journal>.lock``: that is
  the symlink of Optuna's own append lock);
* a database server (PostgreSQL, MySQL): the row lock Optuna takes on the study's row to number
  a new trial (``SELECT … FOR UPDATE``), held by a session of its own; taking it waits out a
  server outage as every other call does (``GuardedStorage``); the server releases it when the
  session ends, also when its connection is lost;
* in memory (one process): a thread lock.

The lock guards only the block's own reads and writes (each a committed transaction of the
storage): whatever one holder wrote, the next holder reads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna

from odeattn.search.storage._guarded import GuardedStorage
from odeattn.search.storage._open import storage_lock
from odeattn.search.storage._optuna_private import (
    backend_of,
    journal_file_of,
    lock_study_row,
    storage_of,
    study_id_of,
)

__all__ = ["study_lock"]

_MEMORY = threading.Lock()


def _lock_file(storage: Any) -> Path | None:
    """``<db>.lock`` of an SQLite storage, ``<journal>.odeattn.lock`` of a journal, else None."""
    backend = backend_of(storage)
    if isinstance(backend, GuardedStorage) and backend.sqlite_file is not None:
        return backend.sqlite_file.with_name(backend.sqlite_file.name + ".lock")
    journal = journal_file_of(storage)
    return None if journal is None else journal.with_name(journal.name + ".odeattn.lock")


@contextlib.contextmanager
def study_lock(study: optuna.Study) -> Iterator[None]:
    """Hold the study's lock while the block runs (see the module docstring)."""
    storage = storage_of(study)
    file = _lock_file(storage)
    if file is not None:
        with storage_lock(file):
            yield
        return
    backend = backend_of(storage)
    if not isinstance(backend, optuna.storages.RDBStorage):  # in memory: this process only
        with _MEMORY:
            yield
        return
    sid = study_id_of(study)
    if isinstance(backend, GuardedStorage):  # a server outage is waited out, as for every call
        session = backend._call(lambda rdb: lock_study_row(rdb, sid), (), {})
    else:
        session = lock_study_row(backend, sid)
    try:
        yield
    finally:
        session.close()
