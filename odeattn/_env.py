"""The process environment a ``python -m odeattn.…`` launch checks before its module runs.

* **Address space** (``ulimit -v``). Loading torch, numpy and scipy maps about 900 MiB, plus a
  32 MiB buffer per BLAS thread in each of numpy's and scipy's OpenBLAS (one thread per core unless
  ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` say otherwise). Below that the import fails inside
  a C library: a ``MemoryError`` or ``ImportError: failed to map segment`` traceback, a glibc or
  C++ abort, or OpenBLAS retrying its thread buffers forever (measured on torch 2.13 CPU). A launch
  under a smaller limit stops with one line and exit 1 instead; a ``MemoryError`` (or a library
  that cannot be mapped) later on, under a limit, is one line and exit 1 too.
* **Threads.** :func:`threads_from_env` is the one reader of ``ODEATTN_THREADS`` (torch threads
  per process; the train CLI, the proxy benchmark, search and every launch call it): unset is
  ``None``, anything but a whole number >= 1 (``""``, ``abc``, ``0``, ``-1``) is a ``ValueError``
  naming the variable and the fix, and a count above the cores this process may use
  (``ODEATTN_THREADS``, else ``OMP_NUM_THREADS``) prints one warning line.

:func:`check_launch` runs both from ``odeattn/__init__.py`` when ``sys.argv[0] == "-m"``, which is
what ``runpy`` sets while it imports the package of ``python -m odeattn.X`` (a library import is
left alone).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Mapping
from types import TracebackType

__all__ = ["check_launch", "cores", "import_need_mib", "threads_from_env"]

VAR = "ODEATTN_THREADS"
_BASE_MIB, _PER_BLAS_THREAD_MIB = 896, 64  # torch + numpy + scipy; 2 OpenBLAS x 32 MiB per thread
_warned: set[str] = set()
_NO_MEMORY = (  # how C libraries word a failed allocation under `ulimit -v`
    "failed to map segment",  # dlopen of a shared library
    "allocate memory",  # torch's CPU allocator, OSError ENOMEM texts
    "could not create a primitive",  # oneDNN (a convolution's workspace)
)


def cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _positive_int(text: str | None) -> int | None:
    try:
        n = int(text) if text is not None else None
    except ValueError:
        return None
    return n if n is not None and n > 0 else None


def threads_from_env(environ: Mapping[str, str] = os.environ) -> int | None:
    """``ODEATTN_THREADS`` as a thread count, ``None`` when unset; ValueError when it is not a
    whole number >= 1. Prints one warning line (once per process) when the count in effect,
    ``ODEATTN_THREADS`` or else ``OMP_NUM_THREADS``, exceeds :func:`cores`."""
    raw = environ.get(VAR)
    if raw is not None and not (raw.strip().isascii() and raw.strip().isdigit() and int(raw) >= 1):
        raise ValueError(  # the words of odeattn.search.processes' reader, which should call this
            f"{VAR} must be a whole number >= 1, but got {VAR}={raw!r}; "
            f"unset it or give e.g. {VAR}=1"
        )
    n = int(raw) if raw is not None else None
    name, count = (VAR, n) if n is not None else ("OMP_NUM_THREADS", None)
    if count is None:
        count = _positive_int(environ.get("OMP_NUM_THREADS"))
    if count is not None and count > cores() and name not in _warned:
        _warned.add(name)
        print(
            f"warning: {name}={count} exceeds the {cores()} CPU core(s) this process may use; "
            f"threads will compete and slow training down: set {name}={cores()} (or fewer)",
            file=sys.stderr,
            flush=True,
        )
    return n


def _blas_threads() -> int:
    """Threads OpenBLAS starts at import (its own variables first, then OpenMP's, else cores)."""
    for var in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        n = _positive_int(os.environ.get(var))
        if n is not None:
            return min(n, 64)
    return min(cores(), 64)  # OpenBLAS builds cap their threads at 64


def import_need_mib() -> int:
    """Address space (MiB) that importing odeattn's CLIs needs here, by the measurement above."""
    return _BASE_MIB + _PER_BLAS_THREAD_MIB * _blas_threads()


def _limit_mib() -> int | None:
    """The soft ``RLIMIT_AS`` (``ulimit -v``) in MiB, ``None`` when unlimited."""
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return None if soft == resource.RLIM_INFINITY else soft // 2**20


def _raise_it(need_mib: int) -> str:
    kib = max(2 * 2**20, (need_mib + 1024) * 2**10)
    return f"raise it with `ulimit -v unlimited` (or at least `ulimit -v {kib}`)"


def _out_of_memory(exc: BaseException) -> bool:
    """A failure the address-space limit explains: MemoryError, ENOMEM, a library not mapped."""
    text = str(exc).lower()
    return (
        isinstance(exc, MemoryError)
        or getattr(exc, "errno", None) == errno.ENOMEM
        or any(s in text for s in _NO_MEMORY)
        or (isinstance(exc, SystemError) and "without exception set" in text)  # a failed malloc
    )


def _hook(limit_mib: int):
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if not _out_of_memory(exc):
            previous(kind, exc, tb)
            return
        what = " ".join(f"{kind.__name__}: {exc}".split()).removesuffix(":")[:160]
        print(
            f"error: out of memory under the address-space limit ulimit -v of {limit_mib} MiB "
            f"({what}); {_raise_it(import_need_mib())}",
            file=sys.stderr,
            flush=True,
        )

    return hook


def check_launch() -> None:
    """Before a ``python -m odeattn.…`` module runs: a too-small ``ulimit -v`` is one line and
    exit 1, a bad ``ODEATTN_THREADS`` one line and exit 2, too many threads one warning line."""
    limit = _limit_mib()
    if limit is not None:
        need = import_need_mib()
        if limit < need:
            print(
                f"error: the address-space limit (ulimit -v) is {limit} MiB, but loading odeattn "
                f"(torch, numpy and scipy with {_blas_threads()} BLAS thread(s)) needs about "
                f"{need} MiB and training more; {_raise_it(need)}",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(1)
        sys.excepthook = _hook(limit)
    try:
        threads_from_env()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
