"""One invocation of a study: storage, resume, backend, progress, then summary and exports.

Order: resolve the storage (``_storage.default_storage``); open or create the study and fail +
re-queue trials a killed process left RUNNING (pid on this host; stale heartbeat, any host, on an
RDB storage); run the backend (optuna in-process, N spawned
local workers, or ``odeattn.search._ray_study.run_ray``); print the summary table; export
``runs/<study>/best/*.yaml``; write the plots; print the optuna-dashboard command.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any

import optuna
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from odeattn.search._config import StudyConfig
from odeattn.search._dashboard import dashboard_command
from odeattn.search._export import export_best, summary_table
from odeattn.search._noise import conclude
from odeattn.search._optuna import open_study, worker_loop, worker_main
from odeattn.search._plots import study_plots
from odeattn.search._ray_study import run_ray
from odeattn.search._space import Space
from odeattn.search._storage import budget_used, default_storage, make_storage, recover_stale

__all__ = ["run_search"]


def _progress_cb(console: Any, bar: Any, task: Any) -> Any:
    def cb(kind: str, info: dict[str, Any]) -> None:
        n = info.get("trial")
        if kind == "start":
            bar.update(task, description=f"trial {n}: building")
        elif kind == "epoch":
            acc = info.get("val_accuracy")
            bar.update(
                task,
                description=f"trial {n}: epoch {info['epoch']}"
                + (f", val acc {acc:.3f}" if acc is not None else ""),
            )
        elif kind in ("done", "pruned"):
            bar.advance(task)
            extra = ", ".join(
                f"{k}={info[k]:.4g}"
                for k in ("val_accuracy", "tns", "attention_blocks")
                if k in info
            )
            console.print(
                f"trial {n} {'complete' if kind == 'done' else 'pruned'}: {extra} "
                f"({info.get('epochs_run', 0):.0f} epochs, {info.get('seconds', 0):.1f} s)"
            )
        elif kind == "fail":
            bar.advance(task)
            console.print(f"[red]trial {n} failed[/]: {escape(str(info['error']))}")  # issue 12

    return cb


def _spawn(study: StudyConfig, url: str, console: Any, bar: Any, task: Any) -> None:
    ctx = mp.get_context("spawn")
    n = study.workers
    threads = int(os.environ.get("ODEATTN_THREADS", "0")) or max(1, (os.cpu_count() or 1) // n)
    overrides = study.model_dump(exclude={"file"})  # the validated study, not the file's text
    procs = [
        ctx.Process(target=_worker_entry, args=(study.file, overrides, url, i, threads))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    s = optuna.load_study(study_name=study.name, storage=_storage(url))
    while any(p.is_alive() for p in procs):
        time.sleep(1.0)
        bar.update(
            task, completed=min(budget_used(s), study.budget.n_trials), description=f"{n} workers"
        )
    for p in procs:
        p.join()
        if p.exitcode:
            console.print(f"[red]a worker exited with status {p.exitcode}[/]")


def _worker_entry(
    file: str, overrides: dict[str, Any], url: str, worker: int, threads: int
) -> None:
    worker_main(file, overrides, url, worker, threads)


def _storage(url: str) -> Any:

    return make_storage(url)


def _run_ray(study: StudyConfig, space: Space, url: str, console: Any) -> None:
    """Hand the study to the Ray backend (``_ray_study.run_ray``: remaining budget, ``study.ray``)."""

    out = run_ray(study, space, url, console=console)
    console.print(f"ray: {out}", soft_wrap=True, highlight=False)


def _backend(study: StudyConfig, space: Space, url: str, console: Any, progress: bool) -> None:

    if study.backend == "ray":
        _run_ray(study, space, url, console)
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    ) as bar:
        s = optuna.load_study(study_name=study.name, storage=_storage(url))
        task = bar.add_task(
            "trials",
            total=study.budget.n_trials,
            completed=min(budget_used(s), study.budget.n_trials),
        )
        if study.workers == 1:
            worker_loop(study, url, progress=_progress_cb(console, bar, task))
        else:
            _spawn(study, url, console, bar, task)


def run_search(
    study: StudyConfig, space: Space, *, console: Any, progress: bool = True
) -> optuna.Study:
    """Run (or continue) ``study`` to its budget; returns the Optuna study."""
    url = default_storage(study, study.workers)
    s = open_study(study, url, space)
    stale = recover_stale(s)
    if stale:
        console.print(
            f"resumed: trials {stale} were left RUNNING by a dead process (gone pid or "
            "stale heartbeat); marked FAIL and re-queued"
        )
    done = budget_used(s)
    console.print(
        f"study [bold]{study.name}[/] in {url}: {done} of {study.budget.n_trials} trials counted; "
        f"backend {study.backend}, {study.workers} worker(s)"
    )
    console.print(f"dashboard: {dashboard_command(url, study)}", soft_wrap=True, highlight=False)
    if done < study.budget.n_trials:
        _backend(study, space, url, console, progress)
    s = optuna.load_study(study_name=study.name, storage=_storage(url))
    conclude(study, s, console)  # issue 12: raise on set-up/all-failed; measure the noise ceiling
    console.print(summary_table(study, s))
    for p in export_best(study, s):
        console.print(
            f"best architecture: {p}   (retrain: python -m odeattn.train --arch {p})",
            soft_wrap=True,
            highlight=False,
        )
    for p in study_plots(study, s):
        console.print(f"plot: {p}", soft_wrap=True, highlight=False)
    console.print(f"dashboard: {dashboard_command(url, study)}", soft_wrap=True, highlight=False)
    return s
