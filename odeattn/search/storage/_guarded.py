"""An Optuna ``RDBStorage`` that waits out a server's outage and says a file's fault in one line.

Every database call Optuna makes (:data:`~._optuna_private.RDB_CALLS`: each opens its own session,
one transaction, rolled back on an error) goes through :meth:`GuardedStorage._call`:

* on a server (PostgreSQL, MySQL) a transient error (:func:`~._faults.transient`: connection
  refused or reset, server restarting) is retried through the URL's :class:`~._faults.Outage`
  (one warning line, backoff, :class:`~._faults.StorageUnavailable` after
  ``ODEATTN_STORAGE_RETRY_S``). Connections are checked before use (``pool_pre_ping``), so a
  pooled connection that died with a restarted server is replaced instead of failing a commit.
  A retry cannot tell one case apart: the connection lost after the server committed and before
  it answered (a window of one round trip). A retried write then repeats: attributes, values and
  heartbeats are the same again; a state change finds its trial finished
  (``UpdateFinishedTrialError``); only a repeated trial creation would leave one extra trial;
* on SQLite a database error other than an integrity error (disk full, read-only file or folder,
  not a database, malformed, locked past the 60 s timeout) becomes a :class:`~._faults.StorageFault`
  naming the file, the cause and the fix.

Several user attributes of a trial are one such call (:meth:`GuardedStorage.set_trial_user_attrs`:
one transaction, retried as a whole; an upsert, so a repeat writes the same rows again), and so
are several params (:meth:`GuardedStorage.set_trial_params`: inserts, as Optuna's one-param write
is, so a repeat after a lost answer meets the rows committed, as Optuna's own retried write does).

Errors Optuna raises on purpose (``KeyError``, ``UpdateFinishedTrialError``, duplicate names)
pass through untouched. Opening the storage is not retried: an unreachable server at start is a
set-up error (exit 2, said by the caller).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc

from odeattn.search.storage._faults import (
    StorageFault,
    cause,
    outage,
    retry_seconds,
    transient,
)
from odeattn.search.storage._optuna_private import (
    RDB_CALLS,
    rdb_set_trial_params,
    rdb_set_user_attrs,
)
from odeattn.search.storage._storage_url import redact

__all__ = ["GuardedStorage", "sqlite_fault"]

_HINTS = (  # SQLite's message -> what to do
    ("full", "free space on its filesystem"),
    ("readonly", "make the file and its folder writable, or use another --storage"),
    ("not a database", "it is damaged or no SQLite file: restore it from a backup or move it away"),
    ("malformed", "it is damaged: restore it from a backup or move it away"),
    ("unable to open", "check that the file and its folder exist and are writable"),
    ("locked", "another process held it past the 60 s timeout; re-run when it is done"),
)


def sqlite_fault(db: Path | str, e: BaseException) -> StorageFault:
    """One line for an SQLite error: the file, SQLite's own words, the fix."""
    why = cause(e)
    hint = next((h for key, h in _HINTS if key in why.lower()), "")
    return StorageFault(f"{db}: {why} (SQLite){'; ' + hint if hint else ''}")


def _is_sqlite_error(e: BaseException) -> bool:
    x: BaseException | None = e
    while x is not None:  # Optuna's StorageInternalError -> SQLAlchemy's error
        if isinstance(x, sqlalchemy.exc.DBAPIError):
            return not isinstance(x, sqlalchemy.exc.IntegrityError)
        x = x.__cause__
    return False


class GuardedStorage(optuna.storages.RDBStorage):
    """``RDBStorage`` with the retry and the one-line faults of the module docstring."""

    def __init__(self, url: str, **kw: Any) -> None:
        self.sqlite_file = (
            Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else None
        )
        self.retry_s = None if self.sqlite_file else retry_seconds()
        if self.sqlite_file is None:
            engine = dict(kw.pop("engine_kwargs", None) or {})
            engine.setdefault("pool_pre_ping", True)  # a pooled connection may have died
            if url.startswith("postgresql") and "connect_timeout" not in url:
                engine.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
            kw["engine_kwargs"] = engine
        try:
            super().__init__(url, **kw)
        except sqlalchemy.exc.DatabaseError as e:
            if self.sqlite_file is None or not _is_sqlite_error(e):
                raise
            raise sqlite_fault(self.sqlite_file, e) from None

    def _call(self, method: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        attempt = 0
        while True:
            try:
                out = method(self, *args, **kwargs)
            except Exception as e:
                if self.sqlite_file is not None:
                    if _is_sqlite_error(e):
                        raise sqlite_fault(self.sqlite_file, e) from None
                    raise
                if not transient(e):
                    raise
                self._wait(e, attempt)
                attempt += 1
                continue
            if self.retry_s is not None:
                outage(self.url, redact(self.url), self.retry_s).ok()
            return out

    def set_trial_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        """Several user attributes in one transaction (``rdb_set_user_attrs``), retried as one."""
        self._call(rdb_set_user_attrs, (trial_id, attrs), {})

    def set_trial_params(self, trial_id: int, params: dict[str, Any], known: Any) -> None:
        """Several params in one transaction (``rdb_set_trial_params``), retried as one."""
        self._call(rdb_set_trial_params, (trial_id, params, known), {})

    def _wait(self, e: Exception, attempt: int) -> None:
        assert self.retry_s is not None
        clock = outage(self.url, redact(self.url), self.retry_s)
        pause = clock.failed(e, attempt)  # or StorageUnavailable: time is up
        try:
            time.sleep(pause)
        except KeyboardInterrupt:  # the user stops: later calls try once, then give up
            clock.give_up()
            raise


def _guarded(name: str) -> Callable[..., Any]:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self: GuardedStorage, *args: Any, **kwargs: Any) -> Any:
        return self._call(method, args, kwargs)

    return call


for _name in RDB_CALLS:
    setattr(GuardedStorage, _name, _guarded(_name))
