"""The embedded backend: an ask/tell loop in this process, or N local worker processes.

Each worker repeats: stop when the study's counted trials reach ``budget.n_trials`` (see
``_storage.budget_used``) or the invocation's timeout has passed; ``ask`` (enqueued params first);
if the trial is surplus (workers that passed the budget check together: more counted trials with
a number ≤ this one's than ``n_trials``) tell it FAIL with ``odeattn_surplus`` without training it
(not counted toward the budget) and stop the worker;
``sample``; a configuration already in storage is served from there (``_duplicate``); else
``run_trial`` (``replicates`` seeds) with a ``report`` that stores the per-epoch values the
pruning rules read (``intermediate``) and applies them (``_prune.decide``); ``tell`` COMPLETE with
the objective values (the mean over replicates), PRUNED (pruned or screened out) or FAIL (an
exception, recorded in the ``error`` attribute; the search goes on — except a
:class:`~odeattn.search.trial._objective.SetupError`, a failure before training, which is not counted
toward the budget and stops the search). While a trial runs on an RDB
storage its heartbeat is recorded (``_storage.heartbeat``), so another host can recover it.

Reproducibility: the sampler is seeded with ``sampler.seed`` (worker i adds i) in the launch that
created the study; any other launch (a resume, or a concurrent launch on the same study) with a
seed derived from (seed, number of existing trials, worker, pid), so no two launches share one
random stream. Same seed, same storage kind, one worker → the same sampled architectures.
"""

from __future__ import annotations

import math
import os
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from odeattn.proxies import Screen
from odeattn.search.backends.optuna._duplicate import find_duplicate, serve_duplicate
from odeattn.search.backends.optuna._ledger import ledger
from odeattn.search.backends.optuna._prune import decide
from odeattn.search.backends.optuna._sampler import make_sampler
from odeattn.search.processes import choose_threads
from odeattn.search.storage import (
    create_or_load,
    created_by_this_launch,
    heartbeat,
    make_storage,
    mark_process,
    storage_of,
    trial_id_of,
)
from odeattn.search.trial import train_replicates
from odeattn.study import (
    STIFFNESS_METRICS,
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


def _screen_scores(s: optuna.Study) -> list[float]:
    return ledger(s).screen_scores()  # COMPLETE and PRUNED trials' screen_score, incrementally


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
    s.tell(trial, state=TrialState.FAIL)
    return None


def _one_trial(study: StudyConfig, space: Space, s: optuna.Study, progress: Progress) -> bool:
    """Run one trial; ``False`` when the asked trial was surplus (the budget is spent: stop)."""
    trial = _ask(s, study.budget.n_trials)
    if trial is None:
        return False
    mark_process(trial)
    with heartbeat(storage_of(s), trial_id_of(trial)):
        _run_one(study, space, s, trial, progress)
    return True


def _per_epoch(study: StudyConfig, key: str, metrics: dict[str, float], epoch: int) -> Any:
    """The value a pruning rule reads for ``key`` (an objective name or the pruning metric)."""
    v = metrics.get(key)
    if v is None and "@" not in key and key in STIFFNESS_METRICS:
        v = metrics.get(f"{key}@{epoch}")  # an end-of-training stiffness objective, this epoch
    return v if v is not None and math.isfinite(v) else None


def _report_fn(
    study: StudyConfig, s: optuna.Study, trial: optuna.Trial, progress: Progress, state: dict
) -> Callable[[int, dict[str, float]], bool]:
    """The per-epoch ``report``: short ``intermediate`` attribute, Optuna report, pruning rule."""
    keys = [*study.objective_names, *([study.pruning.metric] if study.pruning else [])]
    seen: dict[str, list[Any]] = {}
    single = len(study.directions) == 1

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        for k in dict.fromkeys(keys):
            seen.setdefault(k, []).append(_per_epoch(study, k, metrics, epoch))
        trial.set_user_attr("intermediate", seen)
        key = study.pruning.metric if study.pruning else study.objectives[0].name
        if single and seen[key][-1] is not None:
            trial.report(seen[key][-1], epoch)  # the dashboard's learning curve (one objective)
        progress("epoch", {"trial": trial.number, "epoch": epoch, **metrics})
        state["pruned"] = decide(study, s, trial.number, seen, epoch)
        return state["pruned"]

    return report


def _screen_fn(study: StudyConfig, s: optuna.Study, trial: optuna.Trial) -> Any:
    if study.screen is None:
        return None
    sc = study.screen
    rule = Screen(sc.keep_fraction, direction=sc.direction, warmup=sc.warmup_trials)

    def screen(score: float) -> bool:
        decision = rule.decide(score, _screen_scores(s))
        for k, v in decision.as_user_attrs().items():
            trial.set_user_attr(k, v if not isinstance(v, float) or math.isfinite(v) else None)
        return decision.kept

    return screen


def _fail(s: optuna.Study, trial: optuna.Trial, e: BaseException, progress: Progress) -> None:
    trial.set_user_attr("error", f"{type(e).__name__}: {e}")
    trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
    if isinstance(e, SetupError):  # not counted toward the budget (``_storage.counts``)
        trial.set_user_attr("odeattn_setup", True)
    s.tell(trial, state=TrialState.FAIL)
    progress("fail", {"trial": trial.number, "error": f"{type(e).__name__}: {e}"})


def _run_one(
    study: StudyConfig, space: Space, s: optuna.Study, trial: optuna.Trial, progress: Progress
) -> None:
    sample(trial, space)
    dup = find_duplicate(s, trial)
    if dup is not None:  # served from storage, not retrained
        st = serve_duplicate(s, trial, dup)
        info = {"trial": trial.number, **(dup.user_attrs.get("objectives") or {})}
        progress("done" if st == TrialState.COMPLETE else "pruned", info | {"epochs_run": 0})
        return
    state = {"pruned": False}
    report = _report_fn(study, s, trial, progress, state)
    progress("start", {"trial": trial.number, "params": dict(trial.params)})
    try:
        out = train_replicates(
            study,
            dict(trial.params),
            report,
            trial=trial,
            space=space,
            screen=_screen_fn(study, s, trial),
            stopped=lambda: state["pruned"],
        )
    except KeyboardInterrupt:  # Ctrl-C: give the architecture back to the queue, then stop
        trial.set_user_attr("odeattn_stale", True)
        s.enqueue_trial(dict(trial.params), user_attrs={"odeattn_retry_of": trial.number})
        s.tell(trial, state=TrialState.FAIL)
        raise
    except SetupError as e:  # the study is wrong: stop the search (exit 2), budget untouched
        _fail(s, trial, e, progress)
        raise
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
        s.tell(trial, state=TrialState.PRUNED)
        progress("pruned", {"trial": trial.number, **out})
    elif not all(math.isfinite(v) for v in values):
        trial.set_user_attr("error", f"non-finite objective values {values}")
        s.tell(trial, state=TrialState.FAIL)
        progress("fail", {"trial": trial.number, "error": f"non-finite objective values {values}"})
    else:
        s.tell(trial, values)
        progress("done", {"trial": trial.number, **out})


def worker_loop(
    study: StudyConfig,
    storage_url: str,
    *,
    worker: int = 0,
    progress: Progress | None = None,
    threads: int | None = None,
) -> int:
    """Run trials until the budget or the timeout is reached; returns the trials this call ran."""

    torch.set_num_threads(threads or choose_threads(1)[0])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = resolve_space(study)
    s = open_study(study, storage_url, space, worker)
    deadline = time.monotonic() + study.budget.timeout if study.budget.timeout else math.inf
    ran = 0
    while ledger(s).budget_used() < study.budget.n_trials and time.monotonic() < deadline:
        if not _one_trial(study, space, s, progress or (lambda *_: None)):
            break
        ran += 1
    return ran


def worker_main(
    study_file: str, overrides: dict[str, Any], storage_url: str, worker: int, threads: int
) -> None:
    """Entry point of a spawned worker process (``--workers N``)."""

    os.environ.setdefault("MPLBACKEND", "Agg")
    worker_loop(load_study(study_file, **overrides), storage_url, worker=worker, threads=threads)
