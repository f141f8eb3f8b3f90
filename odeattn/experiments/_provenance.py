"""Provenance: what produced a result file, and the one thread count every network trains on.

A float reduction's order depends on torch's thread count, so a trained network is a function of
(seed, threads): on ``digits`` seed 0 gives TNS 0.243 / accuracy 0.9965 on 1 thread and
0.206 / 0.9756 on 2 (issue 21). Every experiment therefore trains on **one torch thread per run**
(parallel runs are separate processes, :mod:`odeattn.experiments._pool`), and every result file
carries ``provenance``::

    torch, threads, cpu, python, commit, dirty, command, date

``command`` and ``date`` are the only fields that differ between two runs of the same command on
the same machine: :func:`stable` drops them, which is how a re-run is compared bit for bit.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

__all__ = ["THREADS", "VOLATILE", "pinned", "provenance", "stable"]

THREADS = 1  # torch threads per run: a seed names the same network only at a fixed count
VOLATILE = ("command", "date")  # provenance fields allowed to differ between two equal runs
_ENV = "ODEATTN_COMMAND"  # the command line, inherited by spawned workers
_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def pinned(argv: Sequence[str] | None = None, prog: str = "") -> Iterator[None]:
    """Run the body on :data:`THREADS` torch thread(s) with ``prog argv`` as the recorded command.

    Both are restored afterwards (a test calling ``main()`` leaves its process as it was). The
    command travels in the environment, so spawned workers record it too.
    """
    threads, old = torch.get_num_threads(), os.environ.get(_ENV)
    if argv is not None:
        os.environ[_ENV] = " ".join(p for p in (prog, shlex.join(argv)) if p)
    torch.set_num_threads(THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if old is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = old


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict[str, Any]:
    """The provenance record of a result written now, by this process."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": _cpu(),
        "python": platform.python_version(),
        "commit": commit.strip() if commit else "unknown",
        "dirty": None if status is None else bool(status.strip()),
        "command": os.environ.get(_ENV, shlex.join(sys.argv)),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def stable(obj: Any) -> Any:
    """``obj`` with the :data:`VOLATILE` fields of every nested ``provenance`` removed."""
    if isinstance(obj, dict):
        return {
            k: (
                {p: q for p, q in v.items() if p not in VOLATILE}
                if k == "provenance" and isinstance(v, dict)
                else stable(v)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [stable(v) for v in obj]
    return obj
