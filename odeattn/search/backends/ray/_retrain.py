"""The noise ceiling's retrains on the Ray backend: Ray tasks on the study's cluster.

Each retrain (``search.trial.retrain``: the replicate loop with fresh seeds) is one Ray task with
the resources of one trial (``ray.cpus_per_trial`` CPUs and as many torch threads,
``ray.gpus_per_trial``), at most ``ray.max_concurrent_trials`` at once, on the cluster the search
used (``ray.address`` / ``RAY_ADDRESS``, else a private local Ray on 127.0.0.1). A task starts
its retrain only if it fits before the deadline and stops at the first epoch boundary past it.
The driver hands each outcome to ``done`` as it arrives (so Ctrl-C loses only unfinished
retrains); Ctrl-C cancels the tasks still running and propagates (exit 130). A task whose worker
dies is an ``error`` outcome with Ray's one-line reason. Ray is imported only inside functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from odeattn.search.backends.ray._start import _import_ray, _init_ray
from odeattn.search.trial import Deadline, Retrain, retrain

__all__ = ["run_retrains"]


def run_retrains(
    study: Any,
    jobs: list[Retrain],
    deadline: Deadline,
    done: Callable[[Retrain, dict[str, Any]], None],
    *,
    job: Any = retrain,
) -> None:
    """Run every job as a Ray task; ``done(job, outcome)`` here, as each one ends."""
    if not jobs:
        return
    ray = _import_ray()
    started = _init_ray(ray, study.ray.address, None)
    try:
        _drive(ray, study, jobs, deadline, done, job)
    finally:
        if started:
            ray.shutdown()


def _drive(
    ray: Any, study: Any, jobs: list[Retrain], deadline: Deadline, done: Any, job: Any
) -> None:
    rc = study.ray
    task = ray.remote(num_cpus=rc.cpus_per_trial, num_gpus=rc.gpus_per_trial, max_retries=0)(_task)
    cap, waiting, running = rc.max_concurrent_trials or len(jobs), list(jobs), {}
    try:
        while waiting or running:
            while waiting and len(running) < cap:
                j = waiting.pop(0)
                running[task.remote(job, study, j, deadline, os.getcwd())] = j
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                done(running.pop(ref), _outcome(ray, ref))
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref, force=True)
        raise


def _outcome(ray: Any, ref: Any) -> dict[str, Any]:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:  # the worker died: the ceiling says so and goes on
        return {"error": f"{type(e).__name__}: {e}".splitlines()[0]}


def _task(job: Any, study: Any, j: Retrain, deadline: Deadline, cwd: str) -> dict[str, Any]:
    """In a Ray worker: the driver's directory (relative data paths), one trial's threads."""
    import torch

    if os.path.isdir(cwd):
        os.chdir(cwd)
    os.environ.setdefault("MPLBACKEND", "Agg")
    torch.set_num_threads(max(1, int(study.ray.cpus_per_trial)))
    return job(study, j, deadline)
