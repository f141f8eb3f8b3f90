"""One invocation of a study: storage, resume, backend, progress, then summary and exports.

Order: the deadline T (``budget.timeout``: stop at T, ``search.trial.Deadline``); resolve the
storage (``_storage.default_storage``); open or create the study and fail + re-queue trials a
killed process left RUNNING (pid on this host; stale heartbeat, any host, on an RDB storage); run
the backend (optuna in-process, N spawned local workers, or ``backends.ray.run_ray``; the optuna
backend then waits for trials other processes still run, and takes over any whose process dies);
the noise ceiling through the same backend (``_retrains``); print the summary table; export
``runs/<study>/best/*.yaml``; write the plots; print the optuna-dashboard command.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import sys
import time
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.trial import TrialState
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from odeattn.search._progress import progress_cb
from odeattn.search._retrains import retrain_runner
from odeattn.search.backends.optuna import open_study, worker_loop, worker_main
from odeattn.search.backends.ray import check_ray, resolve_storage_url, run_ray
from odeattn.search.oneshot import conclude_for, prepare_supernet, retrain_best  # issue 19
from odeattn.search.processes import choose_threads, die_with_parent, interrupt_once, stop_children
from odeattn.search.results import (
    export_best,
    study_plots,
    summary_table,
    write_summary,
)
from odeattn.search.storage import (
    StorageFault,
    budget_used,
    check_storage_url,
    check_study,
    check_writable,
    default_storage,
    interrupted,
    make_storage,
    recover_stale,
    redact,
    stamp_study,
)
from odeattn.search.trial import Deadline, dashboard_command
from odeattn.study import ConfigError, SetupError, Space, StudyConfig, check_depth

#: A worker's exit status for a set-up failure of the study (no restart; the search stops).
SETUP_EXIT = 2

__all__ = ["prepare_storage", "run_search"]


def _start(
    ctx: Any, study: StudyConfig, url: str, i: int, threads: int, errors: Any, dl: Any
) -> Any:
    overrides = study.model_dump(exclude={"file"})  # the validated study, not the file's text
    args = (study.file, overrides, url, i, threads, os.getpid(), errors, dl)
    p = ctx.Process(target=_worker_entry, args=args)
    p.start()
    return p


def _spawn(study: StudyConfig, url: str, console: Any, bar: Any, task: Any, dl: Deadline) -> None:
    """N local workers; a worker that dies has its trial failed and re-queued at once (its pid
    is gone) and is replaced while the budget is not reached; Ctrl-C / SIGTERM stops them all."""
    ctx, n = mp.get_context("spawn"), study.workers
    threads = choose_threads(n)[0]
    errors = ctx.SimpleQueue()  # a worker's set-up failure, said once by this process
    procs = [_start(ctx, study, url, i, threads, errors, dl) for i in range(n)]
    s = optuna.load_study(study_name=study.name, storage=_storage(url))
    restarts, handled = 0, set()
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            for i, p in enumerate(procs):
                if p.is_alive() or not p.exitcode or p.pid in handled:
                    continue
                handled.add(p.pid)
                if p.exitcode == SETUP_EXIT:  # the study is wrong: the others would fail alike
                    stop_children(procs)
                    raise SetupError(errors.get() if not errors.empty() else "worker set-up failed")
                _warn(f"worker {i} (pid {p.pid}) exited with status {p.exitcode}")
                stale = recover_stale(s)
                if stale:
                    _warn(f"trials {stale} of the dead worker: marked FAIL and re-queued")
                if budget_used(s) < study.budget.n_trials and restarts < n and not dl.passed():
                    restarts += 1
                    procs[i] = _start(ctx, study, url, i, threads, errors, dl)
            bar.update(task, completed=min(budget_used(s), study.budget.n_trials))
    except KeyboardInterrupt:
        stop_children(procs)
        raise
    for p in procs:
        p.join()


def _worker_entry(
    file: str,
    overrides: dict[str, Any],
    url: str,
    worker: int,
    threads: int,
    parent: int,
    errors: Any,
    dl: Any,
) -> None:
    """A spawned worker: dies with its parent; an interrupt re-queues its trial and exits 130
    without a traceback (the parent prints the one message)."""
    interrupt_once()
    try:
        die_with_parent(parent)
        _loop_past_stalls(lambda: worker_main(file, overrides, url, worker, threads, dl))
    except KeyboardInterrupt:
        sys.exit(130)
    except (ConfigError, SetupError) as e:  # the parent says it once (exit 2), no traceback
        errors.put(str(e))
        sys.exit(SETUP_EXIT)
    except StorageFault as e:  # one line, no traceback; the parent sees exit 1 (130: Ctrl-C)
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(130 if interrupted(e) else 1)


def _warn(message: str) -> None:
    """A warning the user must see even with --quiet: one line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _loop_past_stalls(loop: Any) -> None:
    """Run a worker loop again when its trial was finished by another process meanwhile (this
    process stalled past the heartbeat grace, e.g. SIGSTOP: the trial is already re-queued)."""
    while True:
        try:
            loop()
            return
        except optuna.exceptions.UpdateFinishedTrialError as e:
            _warn(f"a trial of this process was failed by another one while it stalled: {e}")


def _storage(url: str) -> Any:

    return make_storage(url)


def _run_ray(study: StudyConfig, space: Space, url: str, console: Any, dl: Deadline) -> None:
    """Hand the study to the Ray backend (``_ray_study.run_ray``: remaining budget, ``study.ray``)."""

    out = run_ray(study, space, url, console=console, deadline=dl)
    console.print(f"ray: {out}", soft_wrap=True, highlight=False)


def _backend(
    study: StudyConfig, space: Space, url: str, console: Any, progress: bool, dl: Deadline
) -> None:

    if study.backend == "ray":
        _run_ray(study, space, url, console, dl)
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
            cb = progress_cb(console, bar, task)
            run = functools.partial(worker_loop, study, url, progress=cb, deadline=dl)
            loop = lambda: _loop_past_stalls(run)  # noqa: E731
        else:
            loop = lambda: _spawn(study, url, console, bar, task, dl)  # noqa: E731
        loop()
        _settle(s, study, loop, console, dl)


def _settle(s: optuna.Study, study: StudyConfig, loop: Any, console: Any, dl: Deadline) -> None:
    """The budget is taken, but trials of other processes may still be RUNNING: wait for them
    (until the deadline); one whose process dies (gone pid, or stale heartbeat on any host) is
    failed, re-queued and run here, so the study ends at exactly its budget."""
    while any(t.state == TrialState.RUNNING for t in s.get_trials(deepcopy=False)):
        if dl.passed():
            return
        time.sleep(1.0)
        stale = recover_stale(s)
        if stale:
            _warn(f"trials {stale} of a dead process: marked FAIL and re-queued; running them")
            loop()


def prepare_storage(study: StudyConfig, space: Space, *, accept_changes: bool = False) -> str:
    """The checked storage URL: parsed (driver made explicit), reachable, and either a new study
    or the same search under this name; :class:`ConfigError` (exit 2, one line) otherwise.
    Nothing is created before the URL, the Ray settings and the name reuse are checked."""
    check_ray(study)
    try:
        url = check_storage_url(default_storage(study, study.workers))
        if study.backend == "ray":
            cluster = bool(study.ray.address or os.environ.get("RAY_ADDRESS"))
            url = resolve_storage_url(url, cluster=cluster)
    except ValueError as e:
        raise ConfigError(study.file, "storage", str(e)) from None
    try:
        check_writable(url, study.run_dir)  # issue 18: read-only, full: one line, exit 2
        storage = make_storage(url)
        check_study(study, space, storage, url, accept_changes=accept_changes)
    except ConfigError:  # check_study's refusal, already one line
        raise
    except (StorageFault, ValueError) as e:  # a damaged or empty file, a bad retry setting
        raise ConfigError(study.file, "storage", str(e)) from None
    except sqlalchemy.exc.SQLAlchemyError as e:
        why = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise ConfigError(
            study.file, "storage", f"cannot open {redact(url)}: {why}; check the URL and the server"
        ) from None
    return url


def run_search(
    study: StudyConfig,
    space: Space,
    *,
    console: Any,
    progress: bool = True,
    accept_changes: bool = False,
) -> optuna.Study:
    """Run (or continue) ``study`` to its budget; returns the Optuna study."""
    deadline = Deadline.after(study.budget.timeout)  # T: stop at T (BudgetCfg)
    check_depth(study, space)  # issue 21: before anything is written, as the CLI does
    url = prepare_storage(study, space, accept_changes=accept_changes)
    s = open_study(study, url, space)
    stamp_study(study, space, s)
    stale = recover_stale(s)
    if stale:
        console.print(
            f"resumed: trials {stale} were left RUNNING by a dead process (gone pid or "
            "stale heartbeat); marked FAIL and re-queued"
        )
    done, shown = budget_used(s), redact(url)
    console.print(
        f"study [bold]{study.name}[/] in {shown}: {done} of {study.budget.n_trials} trials "
        f"counted; backend {study.backend}, {study.workers} worker(s)",
        soft_wrap=True,
    )
    console.print(f"dashboard: {dashboard_command(shown, study)}", soft_wrap=True, highlight=False)
    prepare_supernet(study, s, console)  # issue 19: step 1 of strategy: supernet (else no-op)
    if done < study.budget.n_trials and not deadline.passed():
        _backend(study, space, url, console, progress, deadline)
    s = optuna.load_study(study_name=study.name, storage=_storage(url))
    # raise on set-up/all-failed; the noise ceiling before T (strategy: scratch)
    conclude_for(study)(study, s, console, retrain_runner(study), deadline)
    table = summary_table(study, s)
    console.print(table)
    for p in write_summary(study, s, table):
        console.print(f"summary: {p}", soft_wrap=True, highlight=False)
    for p in export_best(study, s):
        console.print(
            f"best architecture: {p}   (retrain: python -m odeattn.train --arch {p})",
            soft_wrap=True,
            highlight=False,
        )
    for p in study_plots(study, s):
        console.print(f"plot: {p}", soft_wrap=True, highlight=False)
    console.print(f"dashboard: {dashboard_command(shown, study)}", soft_wrap=True, highlight=False)
    if study.strategy == "supernet":  # issue 19: step 3, the best trained from scratch
        again = lambda r: run_search(r, space, console=console, progress=progress)  # noqa: E731
        retrain_best(study, s, url, console, again)
    return s
