"""The noise ceiling's retrains, run by the study's backend (``results.measure_ceiling``'s runner).

``retrain_runner(study)`` returns ``run(study, jobs, deadline, done)``:

* ``backend: ray`` — :func:`odeattn.search.backends.ray.run_retrains`: Ray tasks with one
  trial's resources on the study's cluster;
* ``backend: optuna``, ``workers: 1`` — one retrain after another in this process;
* ``backend: optuna``, ``workers: N`` — N spawned processes (the search's worker machinery:
  ``spawn``, ``processes.choose_threads(N)`` torch threads each, each dies with its parent), which
  take the retrains from one queue. Ctrl-C / SIGTERM: every process exits at once, this one with
  ``KeyboardInterrupt`` (exit 130); a worker that dies leaves its retrain for the next run.

Each job is :func:`odeattn.search.trial.retrain` (the replicate loop with fresh seeds: it starts
only if it fits before the deadline and stops at the first epoch boundary past it);
``done(job, outcome)`` is called here, in this process, as each outcome arrives, so the caller
stores every finished retrain at once and an interrupt leaves nothing half-stored.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
from collections.abc import Callable
from typing import Any

import torch

from odeattn.search.backends.ray import run_retrains as run_ray_retrains
from odeattn.search.processes import choose_threads, die_with_parent, interrupt_once, stop_children
from odeattn.search.trial import Deadline, Retrain, retrain
from odeattn.study import StudyConfig

__all__ = ["retrain_runner", "run_local"]

Done = Callable[[Retrain, dict[str, Any]], None]


def retrain_runner(study: StudyConfig) -> Callable[..., None]:
    """The runner of the study's backend (module docstring)."""
    return run_ray_retrains if study.backend == "ray" else run_local


def run_local(
    study: StudyConfig, jobs: list[Retrain], deadline: Deadline, done: Done, *, job: Any = retrain
) -> None:
    """The optuna backend's runner: in this process (``workers: 1``) or in ``workers`` spawned
    processes. ``job(study, retrain, deadline) -> outcome`` must be importable (it is pickled)."""
    n = min(study.workers, len(jobs))
    if n <= 1:
        for j in jobs:
            done(j, job(study, j, deadline))
        return
    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    for item in [*enumerate(jobs), *[None] * n]:  # one stop sign per process
        tasks.put(item)
    threads = choose_threads(n)[0]
    args = (job, study, deadline, tasks, results, os.getpid(), threads)
    procs = [ctx.Process(target=_entry, args=args) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        _collect(jobs, results, procs, done)
    except KeyboardInterrupt:
        stop_children(procs)
        raise
    for p in procs:
        p.join()


def _collect(jobs: list[Retrain], results: Any, procs: list, done: Done) -> None:
    """Hand each outcome to ``done`` as it arrives, until all arrived or every process exited."""
    left = set(range(len(jobs)))
    while left:
        try:
            i, outcome = results.get(timeout=0.5)
        except queue.Empty:
            if any(p.is_alive() for p in procs):
                continue
            numbers = sorted(jobs[i].number for i in left)
            print(
                f"warning: the noise-ceiling retrains of trials {numbers} did not run (their "
                "worker process died); re-run the same command to run them",
                file=sys.stderr,
                flush=True,
            )
            return
        left.discard(i)
        done(jobs[i], outcome)


def _entry(
    job: Any,
    study: StudyConfig,
    deadline: Deadline,
    tasks: Any,
    results: Any,
    parent: int,
    threads: int,
) -> None:
    """A spawned retrain worker: dies with its parent; an interrupt exits 130 without a
    traceback (the parent prints the one message)."""
    interrupt_once()
    try:
        die_with_parent(parent)
        os.environ.setdefault("MPLBACKEND", "Agg")
        torch.set_num_threads(threads)
        while (item := tasks.get()) is not None:
            i, j = item
            results.put((i, job(study, j, deadline)))
    except KeyboardInterrupt:
        sys.exit(130)
