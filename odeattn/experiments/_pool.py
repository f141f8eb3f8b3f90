"""Runs side by side: ``jobs`` spawned processes, each on one torch thread, results in order.

With ``jobs == 1`` every call runs in this process (whose thread count the command pinned, see
:func:`odeattn.experiments._provenance.pinned`); otherwise a ``spawn`` pool of ``jobs`` workers,
each pinned to :data:`~odeattn.experiments._provenance.THREADS` thread(s) and made to die with
its parent. Either way one run computes exactly what it would compute alone: the thread count,
not the load or the number of parallel runs, fixes the arithmetic. An interrupt or a failure
terminates the workers at once; whatever a job had stored stays stored.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import optuna
import torch

from odeattn.experiments._provenance import THREADS
from odeattn.search import die_with_parent

__all__ = ["run_jobs"]


def _init_worker(parent_pid: int) -> None:
    """A worker: one torch thread (alike for every run); dies with its parent."""
    die_with_parent(parent_pid)
    torch.set_num_threads(THREADS)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _star(call: tuple[Callable[..., Any], tuple]) -> Any:
    fn, args = call
    return fn(*args)


def run_jobs(fn: Callable[..., Any], args: Sequence[tuple], jobs: int) -> Iterator[Any]:
    """Yield ``fn(*a)`` for each ``a`` of ``args`` in order, ``jobs`` at a time (see module doc).

    ``fn`` must be a module-level function (it is pickled to the workers) when ``jobs > 1``.
    """
    if jobs < 1:
        raise ValueError(f"`jobs` must be >= 1, but got jobs={jobs!r}")
    if jobs == 1 or len(args) <= 1:
        for a in args:
            yield fn(*a)
        return
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(min(jobs, len(args)), _init_worker, (os.getpid(),))
    try:
        yield from pool.imap(_star, [(fn, tuple(a)) for a in args])
    except BaseException:  # interrupted or failed: stop the running runs now
        pool.terminate()
        raise
    finally:
        pool.close()
        pool.join()
