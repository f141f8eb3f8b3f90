"""The embedded backend: an ask/tell loop in this process, or N local worker processes.

Each worker repeats: stop when the study's counted trials reach ``budget.n_trials`` (see
``_storage.budget_used``) or the invocation's deadline T has passed (``budget.timeout``, one time
for every worker: ``search.trial.Deadline``); ``ask`` (enqueued params first); if the trial is
surplus (workers that passed the budget check together: more counted trials with a number ≤ this
one's than ``n_trials``) tell it FAIL with ``odeattn_surplus`` without training it (not counted
toward the budget) and stop the worker — the expected end of a worker that lost the race for the
last slot, not a fault (FAIL is the one state Optuna's samplers and odeattn's results read as "no
outcome"; Optuna cannot delete a trial); ``sample``; a configuration already in storage is served
from there, one another worker trains now is waited for and then served (``_duplicate.claim``:
one trial trains each configuration); else ``run_trial`` (``replicates`` seeds) with a ``report``
that stores the per-epoch values the pruning rules read (``intermediate``) and applies them
(``_prune.decide``); ``tell`` COMPLETE with the objective values (the mean over replicates),
PRUNED (pruned or screened out) or FAIL (an exception, recorded in the ``error`` attribute; the
search goes on — except a :class:`~odeattn.search.trial._objective.SetupError`, a failure before
training, which is not counted toward the budget and stops the search). A trial still training
(or waiting) at T stops at its next epoch boundary and is re-queued (FAIL ``odeattn_stale``, not
counted; its params enqueued), as on Ctrl-C. While a trial runs on an RDB storage its heartbeat
is recorded (``_storage.heartbeat``), so another host can recover it.

Reproducibility: the sampler is seeded with ``sampler.seed`` (worker i adds i) in the launch that
created the study; any other launch (a resume, or a concurrent launch on the same study) with a
seed derived from (seed, number of existing trials, worker, pid), so no two launches share one
random stream. Same seed, same storage kind, one worker → the same sampled architectures.
"""

from __future__ import annotations

import math
import os
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from odeattn.search.backends.optuna._duplicate import claim, serve_duplicate, wait_for
from odeattn.search.backends.optuna._ledger import ledger
from odeattn.search.backends.optuna._report import report_fn, screen_fn
from odeattn.search.backends.optuna._sampler import make_sampler
from odeattn.search.processes import choose_threads
from odeattn.search.storage import (
    StorageFault,
    create_or_load,
    created_by_this_launch,
    disk_fault,
    give_back,
    heartbeat,
    make_storage,
    mark_process,
    params_in_one_write,
    storage_of,
    tell,
    trial_id_of,
)
from odeattn.search.trial import Deadline, DeadlinePassed, trial_function
from odeattn.study import (
    SetupError,
    Space,
    StudyConfig,
    check_data,
    load_study,
    resolve_space,
    sample,
)

__all__ = ["make_sampler", "open_study", "worker_loop"]

Progress = Callable[[str, dict[str, Any]], None]


def open_study(study: StudyConfig, storage_url: str, space: Space, worker: int = 0) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    check_data(study)  # data files load before any study exists (ConfigError otherwise)
    s = create_or_load(make_storage(storage_url), study.name, study.directions)
    n = len(s.get_trials(deepcopy=False))  # a launch that did not create the study (a resume, a
    salt = 0 if created_by_this_launch(s) else os.getpid()  # concurrent launch) gets its own
    s.sampler = make_sampler(study, space, n, worker, salt)  # sampler stream
    if list(s.directions) != [optuna.study.StudyDirection[d.upper()] for d in study.directions]:
        raise ValueError(
            f"study {study.name!r} in {storage_url} has directions "
            f"{[d.name.lower() for d in s.directions]}, but the file says {study.directions}; "
            "use another --storage or study name"
        )
    if not s.metric_names:
        s.set_metric_names(study.objective_names)
    return s


def _surplus(s: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """Whether ``trial`` (just asked) lies beyond the budget: more than ``n_trials`` counted trials
    have a number ≤ its number (numbers are assigned atomically by the storage, so of workers that
    passed the budget check together exactly the later-numbered ones are surplus)."""
    led = ledger(s)
    led.refresh()
    return led.counted_up_to(trial.number) > n_trials


def _ask(s: optuna.Study, n_trials: int) -> optuna.Trial | None:
    """``ask``, or ``None`` when the asked trial is surplus (it is then told FAIL, labelled
    ``odeattn_surplus``, never trained and not counted toward the budget)."""
    with warnings.catch_warnings():  # heartbeats are recorded by _storage.heartbeat, not optimize()
        warnings.filterwarnings("ignore", message=".*[Hh]eartbeat.*")
        trial = s.ask()
    if not _surplus(s, trial, n_trials):
        return trial
    trial.set_user_attr("odeattn_surplus", True)
    tell(s, trial, state=TrialState.FAIL)
    return None


def _one_trial(
    study: StudyConfig, space: Space, s: optuna.Study, progress: Progress, deadline: Any = None
) -> bool:
    """Run one trial; ``False`` when the asked trial was surplus (the budget is spent: stop)."""
    trial = _ask(s, study.budget.n_trials)
    if trial is None:
        return False
    mark_process(trial)
    with heartbeat(storage_of(s), trial_id_of(trial)):
        try:
            _run_one(study, space, s, trial, progress, deadline)
        except StorageFault as e:  # re-queued, not counted (or by the next run); exit 1
            raise give_back(s, trial, e) from None
    return True


def _requeue(s: optuna.Study, trial: optuna.Trial) -> None:
    """Give the architecture back to the queue: FAIL ``odeattn_stale`` (not counted) + enqueue."""
    trial.set_user_attr("odeattn_stale", True)
    s.enqueue_trial(dict(trial.params), user_attrs={"odeattn_retry_of": trial.number})
    tell(s, trial, state=TrialState.FAIL)


def _fail(s: optuna.Study, trial: optuna.Trial, e: BaseException, progress: Progress) -> None:
    trial.set_user_attr("error", f"{type(e).__name__}: {e}")
    trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
    if isinstance(e, SetupError):  # not counted toward the budget (``_storage.counts``)
        trial.set_user_attr("odeattn_setup", True)
    tell(s, trial, state=TrialState.FAIL)
    progress("fail", {"trial": trial.number, "error": f"{type(e).__name__}: {e}"})


def _served(
    s: optuna.Study, trial: optuna.Trial, progress: Progress, deadline: Deadline | None
) -> bool:
    """``True`` when ``trial`` is not to be trained: its configuration trained before is served
    from storage, also after waiting for the worker training it now (``_duplicate.claim``), or
    the deadline passed while waiting (then it is re-queued); ``False``: it claimed the training."""
    while (got := claim(s, trial)) is not None and not isinstance(got, FrozenTrial):
        trial.set_user_attr("odeattn_waited_for", got)
        progress("waiting", {"trial": trial.number, "for": got})
        try:
            if not wait_for(s, got, deadline):
                _requeue(s, trial)
                progress("requeued", {"trial": trial.number, "why": "budget.timeout passed"})
                return True
        except KeyboardInterrupt:  # Ctrl-C while waiting: re-queued, as a training trial is
            _requeue(s, trial)
            raise
    if got is None:
        return False
    st = serve_duplicate(s, trial, got)
    info = {"trial": trial.number, **(got.user_attrs.get("objectives") or {})}
    progress("done" if st == TrialState.COMPLETE else "pruned", info | {"epochs_run": 0})
    return True


def _run_one(
    study: StudyConfig,
    space: Space,
    s: optuna.Study,
    trial: optuna.Trial,
    progress: Progress,
    deadline: Deadline | None,
) -> None:
    with params_in_one_write(trial):  # one storage write, not one per param (issue 20)
        sample(trial, space)
    if _served(s, trial, progress, deadline):
        return
    state = {"pruned": False}
    report = report_fn(study, s, trial, progress, state)
    progress("start", {"trial": trial.number, "params": dict(trial.params)})
    try:
        out = trial_function(study)(  # issue 19: train_replicates, or score_trial (supernet)
            study,
            dict(trial.params),
            report,
            trial=trial,
            space=space,
            screen=screen_fn(study, s, trial),
            stopped=lambda: state["pruned"],
            deadline=deadline,
        )
    except KeyboardInterrupt:  # Ctrl-C: give the architecture back to the queue, then stop
        _requeue(s, trial)
        raise
    except DeadlinePassed:  # budget.timeout: the same, and the worker loop ends
        _requeue(s, trial)
        progress("requeued", {"trial": trial.number, "why": "budget.timeout passed"})
        return
    except SetupError as e:  # the study is wrong: stop the search (exit 2), budget untouched
        _fail(s, trial, e, progress)
        raise
    except StorageFault:  # issue 18: the storage failed under the trial (_one_trial gives it back)
        raise
    except OSError as e:  # a full or read-only disk is not the trial's fault (issue 18)
        fault = disk_fault(e, study.run_dir)
        if fault is None:
            _fail(s, trial, e, progress)
            return
        raise fault from None
    except Exception as e:
        _fail(s, trial, e, progress)
        return
    _tell(study, s, trial, out, state["pruned"], progress)


def _tell(
    study: StudyConfig,
    s: optuna.Study,
    trial: optuna.Trial,
    out: dict[str, Any],
    pruned: bool,
    progress: Progress,
) -> None:
    values = [out.get(n, math.nan) for n in study.objective_names]
    if pruned or out.get("screened_out"):
        tell(s, trial, state=TrialState.PRUNED)
        progress("pruned", {"trial": trial.number, **out})
    elif not all(math.isfinite(v) for v in values):
        trial.set_user_attr("error", f"non-finite objective values {values}")
        tell(s, trial, state=TrialState.FAIL)
        progress("fail", {"trial": trial.number, "error": f"non-finite objective values {values}"})
    else:
        tell(s, trial, values)
        progress("done", {"trial": trial.number, **out})


def worker_loop(
    study: StudyConfig,
    storage_url: str,
    *,
    worker: int = 0,
    progress: Progress | None = None,
    threads: int | None = None,
    deadline: Deadline | None = None,
) -> int:
    """Run trials until the budget is reached or the deadline has passed (default: ``timeout``
    seconds from now); returns the trials this call ran."""

    torch.set_num_threads(threads or choose_threads(1)[0])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = resolve_space(study)
    s = open_study(study, storage_url, space, worker)
    deadline = deadline or Deadline.after(study.budget.timeout)
    ran = 0
    while ledger(s).budget_used() < study.budget.n_trials and not deadline.passed():
        if not _one_trial(study, space, s, progress or (lambda *_: None), deadline):
            break
        ran += 1
    return ran


def worker_main(
    study_file: str,
    overrides: dict[str, Any],
    storage_url: str,
    worker: int,
    threads: int,
    deadline: Deadline | None = None,
) -> None:
    """Entry point of a spawned worker process (``--workers N``); ``deadline``: the parent's."""

    os.environ.setdefault("MPLBACKEND", "Agg")
    study = load_study(study_file, **overrides)
    worker_loop(study, storage_url, worker=worker, threads=threads, deadline=deadline)
