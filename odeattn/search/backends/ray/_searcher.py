"""Ray Tune's searcher for an odeattn study: Optuna ``ask``/``tell`` on the shared storage.

The driver asks the study (its sampler, enqueued trials first) for a trial, samples its params
(``sample_fn``, define-by-run on a real ``optuna.Trial``) and hands Tune
``{"_odeattn_trial": number, "_odeattn_params": params}``; when Tune reports the trial's end it
tells Optuna, with public API only:

* COMPLETE with the objective values; PRUNED (ASHA stop, decided in the worker, or screened out);
  FAIL with the worker's one-line error (a non-finite objective is a FAIL too; a ``SetupError``
  is a FAIL that spends no budget and stops the search: no more trials are asked);
* a trial whose **worker died** (Tune's ``error`` after ``max_failures`` retries) or that was
  **unfinished when Tune stopped** (Ctrl-C, ``--timeout``, a crash: :meth:`requeue_unfinished`)
  is failed with ``odeattn_stale`` (not counted toward the budget) and its params are enqueued
  again, once (a retry that dies again is a counted FAIL), so no budget slot is lost.

Deadline (``budget.timeout``, stop at T): after T nothing is asked; Tune's time budget stops the
trials still running at T, which are then re-queued as above.

Budget: the searcher asks while ``budget_used(study) < n_trials`` (``_storage.budget_used``:
RUNNING trials of every process count), so a re-queued trial is run again in the same invocation
and the study ends at exactly its budget; a trial asked beyond the budget by a concurrent driver
is told FAIL with ``odeattn_surplus`` (not counted), as the optuna backend does. This module
imports Ray at the top and is imported only inside ``_ray.run``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from odeattn.search.backends.ray._worker import ERROR, FINAL, META, PARAMS, PRUNED, SETUP
from odeattn.search.storage import budget_used, counts
from odeattn.search.trial import Deadline

__all__ = ["StudySearcher", "outcome"]


def outcome(result: dict | None, names: list[str]) -> tuple[list[float] | None, TrialState, str]:
    """(values, state, error) to tell for a trial that ran to its end in the worker."""
    if not result or ERROR in result:
        return None, TrialState.FAIL, str((result or {}).get(ERROR, "no result"))
    if result.get(PRUNED) or result.get("screened_out") or not result.get(FINAL):
        return None, TrialState.PRUNED, ""
    values = [float(result.get(m, math.nan)) for m in names]
    if all(math.isfinite(v) for v in values):
        return values, TrialState.COMPLETE, ""
    return None, TrialState.FAIL, f"non-finite objective values {values}"


class StudySearcher(Searcher):
    """Optuna's sampler behind Tune's ``Searcher`` interface (see the module docstring)."""

    def __init__(
        self,
        study: optuna.Study,
        n_trials: int,
        names: list[str],
        space: Any,
        sample_fn: Callable,
        progress: Callable[[int, str, dict], None] | None,
        deadline: Deadline | None = None,
    ) -> None:
        super().__init__()
        self.deadline = deadline or Deadline()
        self.study, self.n_trials, self.names = study, n_trials, list(names)
        self.space, self.sample_fn, self.progress = space, sample_fn, progress
        self.running: dict[str, optuna.Trial] = {}  # Tune trial id -> Optuna trial
        self.setup_error = ""  # a trial's SetupError: no more trials; the driver raises it

    def __getstate__(self) -> dict:  # Tune pickles its search algorithm; the live handles stay
        return {"n_trials": self.n_trials, "names": self.names}

    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        return True  # the search space is the study's; Tune's param_space is not used

    def save_to_dir(self, *args: Any, **kwargs: Any) -> None:
        return None  # the Optuna storage is the state; resume = run again on the same study

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        return None  # per-epoch values are written by the worker

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.setup_error or self.deadline.passed() or budget_used(self.study) >= self.n_trials:
            return None if self.running else Searcher.FINISHED
        with warnings.catch_warnings():  # heartbeats are recorded by the worker
            warnings.filterwarnings("ignore", message=".*[Hh]eartbeat.*")
            trial = self.study.ask()
        counted = [t for t in self.study.get_trials(deepcopy=False) if counts(t)]
        if sum(t.number <= trial.number for t in counted) > self.n_trials:
            trial.set_user_attr("odeattn_surplus", True)  # a concurrent driver took the slot
            self.study.tell(trial, state=TrialState.FAIL)
            return None if self.running else Searcher.FINISHED
        params = self.sample_fn(trial, self.space)
        self.running[trial_id] = trial
        return {META: trial.number, PARAMS: dict(params)}

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        trial = self.running.pop(trial_id, None)
        if trial is None:
            return
        if error:
            self._requeue(trial, "its worker died (Tune gave up after max_failures retries)")
            return
        if (result or {}).get(SETUP):
            self.setup_error = str(result[ERROR])
        values, state, message = outcome(result, self.names)
        if message:
            self._set_attr(trial, "error", message)
        self.study.tell(trial, values, state=state, skip_if_finished=True)
        self._show(trial.number, state.name, result or {}, message)

    def requeue_unfinished(self, why: str) -> list[int]:
        """Fail (not counted) and re-queue every trial Tune left unfinished; their numbers."""
        numbers = []
        for trial_id in list(self.running):
            trial = self.running.pop(trial_id)
            self._requeue(trial, why)
            numbers.append(trial.number)
        return numbers

    def _requeue(self, trial: optuna.Trial, why: str) -> None:
        frozen = self.study.get_trials(deepcopy=False)[trial.number]
        if frozen.state != TrialState.RUNNING:
            return  # another process (heartbeat recovery) finished it already
        retry = frozen.user_attrs.get("odeattn_retry_of") is not None
        self._set_attr(trial, "error", f"unfinished: {why}")
        if not retry:  # once: a retry that dies again is a counted FAIL, not an endless loop
            self._set_attr(trial, "odeattn_stale", True)
            self.study.enqueue_trial(
                dict(frozen.params), user_attrs={"odeattn_retry_of": frozen.number}
            )
        self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        self._show(trial.number, "FAIL", {}, f"{why}; " + ("FAIL" if retry else "re-queued"))

    @staticmethod
    def _set_attr(trial: optuna.Trial, key: str, value: Any) -> None:
        # finished by another process meanwhile (heartbeat recovery): its record stands
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            trial.set_user_attr(key, value)

    def _show(self, number: int, state: str, result: dict, message: str) -> None:
        if self.progress is not None:
            self.progress(number, state, {**result, "error": message} if message else result)
