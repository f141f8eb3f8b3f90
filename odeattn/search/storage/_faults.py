"""Storage faults in one line, and a database server's outage waited out.

* :class:`StorageFault`: the storage cannot be used: a file that is read-only, full, damaged or
  no storage at all, or a server away for longer than the retry time (:class:`StorageUnavailable`).
  Its message is one line naming the storage (password hidden) and the cause. The CLI prints it
  and exits 2 when it is found before a trial ran (the user's file or setting), 1 when a running
  trial was cut short (that trial is re-queued, not counted).
* :func:`transient`: a database server away (connection refused or reset, server restarting or
  shutting down): SQLAlchemy ``OperationalError``, ``InterfaceError`` or ``DisconnectionError``
  anywhere in the cause chain. Optuna wraps an error inside its session in
  ``StorageInternalError`` ("… invalid data in the commit, e.g. exceeding max length"), whose
  ``__cause__`` is the real error.
* :class:`Outage`: one per server URL and process. The first transient error prints one warning
  line and starts the clock; calls are retried with exponential backoff (0.5 s doubling up to
  8 s) until one succeeds (the outage is over) or ``ODEATTN_STORAGE_RETRY_S`` seconds (default
  120) have passed since the outage began: then :class:`StorageUnavailable`, and every later call
  of the process gets one try only, until one succeeds.
* :func:`interrupted`: whether a fault came while handling Ctrl-C (the interrupted trial could not
  be given back because the server was away): the CLI then exits 130 with the resume hint, as
  for any interrupt — the trial stays RUNNING and the next run re-queues it, so nothing is lost.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Iterator

import sqlalchemy.exc

from odeattn._errors import must

__all__ = [
    "RETRY_S",
    "Outage",
    "StorageFault",
    "StorageUnavailable",
    "cause",
    "interrupted",
    "outage",
    "retry_seconds",
    "transient",
    "warn",
]

RETRY_S = 120.0  # default of ODEATTN_STORAGE_RETRY_S
_FIRST, _LONGEST = 0.5, 8.0  # backoff: the first wait, the longest (seconds)
_TRANSIENT = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
)


class StorageFault(RuntimeError):
    """The storage cannot be used; the message is one line naming it, the cause and the fix."""


class StorageUnavailable(StorageFault):
    """A database server stayed unreachable for longer than the retry time."""


def warn(message: str) -> None:
    """A warning the user must see even with --quiet: one line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def retry_seconds() -> float:
    """``ODEATTN_STORAGE_RETRY_S`` (seconds ≥ 0), default :data:`RETRY_S`."""
    raw = os.environ.get("ODEATTN_STORAGE_RETRY_S")
    if raw is None:
        return RETRY_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise must("ODEATTN_STORAGE_RETRY_S", "be a number of seconds >= 0 (default 120)", raw)
    return value


def _chain(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        todo += [x.__cause__, x.__context__]


def transient(e: BaseException) -> bool:
    """Whether ``e`` says that a database server is away (see the module docstring)."""
    return any(isinstance(x, _TRANSIENT) for x in _chain(e))


def cause(e: BaseException) -> str:
    """The first line of the driver's own message (``DBAPIError.orig``), else of ``e``."""
    text = ""
    for x in _chain(e):
        orig = getattr(x, "orig", None)
        if orig is not None:
            text = str(orig)
            break
    lines = [ln.strip() for ln in (text or str(e)).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


class Outage:
    """The outage clock of one server storage in this process (see the module docstring)."""

    def __init__(self, shown: str, limit_s: float) -> None:
        self.shown, self.limit_s = shown, limit_s
        self._lock = threading.Lock()
        self.since: float | None = None
        self.given_up = False
        self.stopped = False  # given up because the user interrupted a wait

    def failed(self, e: BaseException, attempt: int) -> float:
        """Seconds to wait before the next try, or :class:`StorageUnavailable` (time is up)."""
        with self._lock:
            now = time.monotonic()
            if self.since is None:
                self.since = now
                if not self.given_up:
                    warn(
                        f"storage {self.shown} unreachable ({cause(e)}); retrying for up to "
                        f"{self.limit_s:g} s (ODEATTN_STORAGE_RETRY_S)"
                    )
            waited = now - self.since
            if self.given_up or waited >= self.limit_s:
                self.given_up = True
                why = (
                    "at the interrupt"
                    if self.stopped
                    else f"for {waited:.0f} s, longer than ODEATTN_STORAGE_RETRY_S={self.limit_s:g}"
                )
                raise StorageUnavailable(
                    f"storage {self.shown} unreachable {why}: {cause(e)}"
                ) from None
            return min(_FIRST * 2**attempt, _LONGEST, self.limit_s - waited)

    def ok(self) -> None:
        """A call succeeded: the outage (if any) is over."""
        if self.since is not None or self.given_up:
            with self._lock:
                self.since, self.given_up, self.stopped = None, False, False

    def give_up(self) -> None:
        """No more waiting in this process: the user interrupted a wait."""
        with self._lock:
            self.given_up = self.stopped = True
            self.since = self.since if self.since is not None else time.monotonic()


_OUTAGES: dict[str, Outage] = {}
_OUTAGES_LOCK = threading.Lock()


def outage(url: str, shown: str, limit_s: float) -> Outage:
    """The one :class:`Outage` of ``url`` in this process."""
    with _OUTAGES_LOCK:
        if url not in _OUTAGES:
            _OUTAGES[url] = Outage(shown, limit_s)
        return _OUTAGES[url]


def interrupted(e: BaseException) -> bool:
    """Whether ``e`` was raised while a ``KeyboardInterrupt`` was being handled (its context)."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False
