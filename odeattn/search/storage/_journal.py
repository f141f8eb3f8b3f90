"""A journal file opened safely: a torn last record cut off (the original kept), damage in one line.

Optuna's ``JournalFileBackend`` (4.x and 5.x: ``optuna/storages/journal/_file.py``) appends each
batch of operations as JSON lines (``{"op_code":…``), under a lock file every writer takes (the
``<journal>.lock`` symlink of ``JournalFileSymlinkLock``). Reading, it skips an invalid *last*
line (no newline, or not JSON) without a word, and raises on an invalid line that has lines after
it. So a write cut short (disk full, a crash, SIGKILL) leaves a torn last record that goes
unnoticed until the next append lands after the torn bytes: from then on every reader, Optuna and
optuna-dashboard alike, fails with ``JSONDecodeError``.

Hence, with Optuna's public API and plain file operations only:

* :func:`open_journal` checks the last line before Optuna reads the file, and
  :class:`RepairingLock` (the lock Optuna's appends take, same lock file) checks the last byte
  each time it is acquired, before the append. A torn last record — the bytes after the last
  complete line, or a last line that is not JSON, that look like the start of a record (possibly
  padded with the NUL bytes a crash can leave) — is cut off under the lock: the whole file is
  first copied to ``<journal>.torn-<UTC time>.bak`` next to it, then truncated at the end of the
  last complete record, and one warning names both files. What is cut is exactly what Optuna was
  already ignoring, so the study's state does not change; a trial whose last write was torn is
  RUNNING with a gone process and is re-queued by the usual recovery.
* Anything else that is not a record (random bytes at the end, a bad line in the middle) is not
  guessed at: :class:`~._faults.StorageFault` names the file and the line (exit 2).
* An ``OSError`` while reading or appending (disk full, read-only) is a ``StorageFault`` naming the
  file.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from odeattn.search.storage._faults import StorageFault, warn

__all__ = ["RepairingLock", "cut_torn_tail", "damage", "open_journal"]

_RECORD = b'{"op_code":'  # how every record Optuna writes begins
_CHUNK = 1 << 16


def _last_line_start(f: Any, size: int) -> int:
    """Offset of the first byte after the last newline before the file's final byte."""
    end = size - 1  # a final newline ends the last line; look for the one before it
    while end > 0:
        start = max(0, end - _CHUNK)
        f.seek(start)
        at = f.read(end - start).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


def _record_like(line: bytes) -> bool:
    head = line.rstrip(b"\0")
    return head.startswith(_RECORD) or _RECORD.startswith(head)


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def torn_at(path: Path) -> int | None:
    """Where a torn last record begins, or ``None`` (the file ends in a complete record);
    :class:`StorageFault` for a last line that is no record at all."""
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return None
    with open(path, "rb") as f:
        start = _last_line_start(f, size)
        f.seek(start)
        line = f.read()
    if line.endswith(b"\n") and _is_record(line):
        return None
    if not _record_like(line):
        raise StorageFault(damage(path, "its last line is not a journal record"))
    return start


def _backup(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out, k = path.with_name(f"{path.name}.torn-{stamp}.bak"), 1
    while out.exists():
        k += 1
        out = path.with_name(f"{path.name}.torn-{stamp}-{k}.bak")
    return out


def cut_torn_tail(path: Path) -> Path | None:
    """Cut a torn last record off (the caller holds the journal's lock); the backup, or None."""
    at = torn_at(path)
    if at is None:
        return None
    size, backup = path.stat().st_size, _backup(path)
    try:
        shutil.copyfile(path, backup)
        with open(backup, "rb") as b:
            os.fsync(b.fileno())
        with open(path, "r+b") as f:
            f.truncate(at)
            os.fsync(f.fileno())
    except OSError as e:
        backup.unlink(missing_ok=True)
        raise StorageFault(
            f"{path}: its last record is torn, and it could not be cut off safely "
            f"({e.strerror} while keeping a copy as {backup}); free space and re-run"
        ) from None
    warn(
        f"{path}: its last record was torn ({size - at} bytes after the last complete record: "
        f"a crash or a full disk during a write); cut off, the original is kept as {backup}"
    )
    return backup


def damage(path: Path, what: str) -> str:
    """One line for a journal that is not (or no longer) an Optuna journal."""
    bad, n = None, 0
    with open(path, "rb") as f:
        for n, line in enumerate(f, start=1):
            if bad is None and not _is_record(line):
                bad = n
    where = f"; line {bad} of {n} is the first that is no journal record" if bad else ""
    return (
        f"{path}: {what}{where}; the journal is damaged: restore it from a backup, or move it "
        "away to start the study anew"
    )


class RepairingLock(JournalFileSymlinkLock):
    """Optuna's lock of a journal file; once held, a torn tail left by a failed append (the
    file does not end with a newline) is cut off before anyone writes after it."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = Path(path)

    def acquire(self) -> bool:
        got = super().acquire()
        try:
            size = self.path.stat().st_size
            if size:
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        cut_torn_tail(self.path)
        except BaseException:
            self.release()
            raise
        return got


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


class _Backend(JournalFileBackend):
    """The journal backend with faults as one line (see the module docstring)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, lock_obj=RepairingLock(path))
        self.path = Path(path)

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        try:
            yield from super().read_logs(log_number_from)
        except OSError as e:
            raise StorageFault(f"{self.path}: cannot read it ({e.strerror})") from None
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, "Invalid log format."
            raise StorageFault(damage(self.path, _first_line(e))) from None

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        try:
            super().append_logs(logs)
        except OSError as e:
            raise StorageFault(f"{self.path}: cannot write it ({e.strerror})") from None


def open_journal(path: str) -> JournalStorage:
    """The journal storage of ``path``, its torn tail cut off first (see the module docstring)."""
    p = Path(path)
    if torn_at(p) is not None:
        lock = RepairingLock(path)
        lock.acquire()  # cuts a tail that does not end with a newline
        try:
            cut_torn_tail(p)  # and one that does, but is not JSON
        finally:
            lock.release()
    try:
        backend = _Backend(path)  # creates an empty file if there is none
    except OSError as e:
        raise StorageFault(f"{p}: cannot create or open it ({e.strerror})") from None
    try:
        return JournalStorage(backend)
    except (KeyError, TypeError, ValueError) as e:  # valid JSON, but not Optuna's operations
        why = f"not an Optuna journal ({type(e).__name__}: {_first_line(e)})"
        raise StorageFault(damage(p, why)) from None
