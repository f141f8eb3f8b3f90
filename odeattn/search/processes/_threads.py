"""How many torch threads a trial gets: the free cores per worker, not every core.

PyTorch's CPU kernels split each operation over ``torch.get_num_threads()`` OpenMP threads and
wait for the slowest one at every operation. On a machine whose cores are busy with other work,
a thread that is not scheduled stalls all the others: at load 5–14 on 2 cores, 2 threads per
trial made the main job 30× slower (trials 585–802 s instead of 9–38 s), while one thread slows
by about the machine's share of the cores (``benchmarks/bench_threads.py`` measures both). So
the default is

    threads = max(1, ⌊free cores / workers⌋),   free cores = cores − (1-min load average − own)

read once at start-up; ``--threads N`` (or ``ODEATTN_THREADS``) sets it explicitly.
"""

from __future__ import annotations

import os

from odeattn._env import cores, threads_from_env

__all__ = ["choose_threads"]


def choose_threads(workers: int = 1) -> tuple[int, str]:
    """(threads per trial, why) for ``workers`` concurrent trials on this machine."""
    explicit = threads_from_env()  # the one reader of ODEATTN_THREADS
    if explicit is not None:
        return explicit, "set by --threads / ODEATTN_THREADS"
    n = cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    free = max(1, round(n - load))
    threads = max(1, free // max(1, workers))
    return threads, f"{n} cores, load {load:.1f}, {workers} worker(s)"
