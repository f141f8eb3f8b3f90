"""Duplicates served from storage: a configuration proposed again is not retrained.

A configuration the sampler proposes again (same ``params``) is not retrained: the earlier
trial's values, state and attributes are served from storage and the new trial records
``duplicate_of``. Replicates (``search.trial.train_replicates``) are the way to spend more
compute on one configuration.

Concurrent workers (issue 20): two workers can be handed the same configuration while neither
has finished it, and a lookup of finished trials alone then lets both train it. So, after
sampling, a trial *claims* its configuration under the study's lock (``storage.study_lock``,
one process at a time): :func:`claim` reads the study and answers exactly one of

* a finished (COMPLETE or PRUNED) trial with these params: serve it;
* a RUNNING trial with these params that claimed them (user attribute ``odeattn_trains``): wait
  for it (:func:`wait_for`), then claim again — it is served then, unless that trial ended
  without a result (FAIL, or failed as stale and re-queued), in which case this one trains;
* neither: this trial marks itself ``odeattn_trains`` (before the lock is released) and trains.

At any time at most one RUNNING trial holds the claim of a configuration, so no configuration is
trained twice; a trial that waited records ``odeattn_waited_for`` (the trial it waited for) and,
served, ``duplicate_of``. While waiting, its heartbeat goes on, trials of dead processes are
recovered (``storage.recover_stale``: the one waited for may be one), and at the invocation's
deadline it is re-queued like a trial that is training.
"""

from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from odeattn.search.backends.optuna._ledger import ledger
from odeattn.search.storage import recover_stale, set_constraint, set_user_attrs, study_lock, tell

__all__ = ["TRAINS", "claim", "find_duplicate", "serve_duplicate", "wait_for"]

#: The user attribute of the trial that claimed its configuration's training.
TRAINS = "odeattn_trains"
#: Waiting for a trial: the first pause (s), doubled up to the last; recovery every RECOVER s.
PAUSE, MAX_PAUSE, RECOVER = 0.01, 1.0, 5.0

#: Short attributes copied from the served trial (long structures stay in its artifacts).
_COPIED = (
    "placement",
    "adaptor",
    "method",
    "params",
    "flops",
    "attention_blocks",
    "tns",
    "tns_se",
    "tns@init",
    "epochs_run",
    "objectives",
    "objectives_se",
    "constraint_violations",
    "architecture",
    "train_overrides",
    "intermediate",
    "seed",
    "seeds",
    "replicate_values",
    "threads",
)


def find_duplicate(s: optuna.Study, trial: optuna.Trial) -> FrozenTrial | None:
    """The earliest COMPLETE or PRUNED trial with exactly ``trial``'s params (and not itself):
    a dict lookup in the study's ledger, not a scan of every trial (issue 20)."""
    return ledger(s).duplicate(trial.params, trial.number)


def serve_duplicate(s: optuna.Study, trial: optuna.Trial, src: FrozenTrial) -> TrialState:
    """Tell ``trial`` the result ``src`` already holds (its values and state); returns the state.
    Its copied attributes and ``duplicate_of`` are one storage write (``set_user_attrs``)."""
    copied = {k: src.user_attrs[k] for k in _COPIED if k in src.user_attrs}
    set_user_attrs(trial, {**copied, "duplicate_of": src.number})
    for key, value in (src.constraints or {}).items():  # the samplers' view of feasibility
        set_constraint(trial, key, value)
    if src.state == TrialState.COMPLETE:
        tell(s, trial, list(src.values))
    else:
        tell(s, trial, state=TrialState.PRUNED)
    return src.state


def claim(s: optuna.Study, trial: optuna.Trial) -> FrozenTrial | int | None:
    """Under the study's lock: the earliest finished trial with ``trial``'s params (serve it),
    else the number of the RUNNING trial that claimed them (wait for it), else ``None`` after
    marking ``trial`` as the one that trains them (see the module docstring)."""
    led = ledger(s)
    with study_lock(s):
        led.refresh()  # inside the lock: every claim made before this one is read
        done = led.duplicate(trial.params, trial.number)
        if done is not None:
            return done
        other = led.trainer(trial.params, trial.number, TRAINS)
        if other is not None:
            return other
        trial.set_user_attr(TRAINS, True)
    return None


def wait_for(s: optuna.Study, number: int, deadline: Any = None) -> bool:
    """Wait until trial ``number`` is finished: ``True``; ``False`` when ``deadline`` (a
    ``search.trial.Deadline``) passed first. Polls the study (pauses of 10 ms doubling up to
    1 s) and recovers trials of dead processes every 5 s, so a trial whose worker died ends."""
    led, pause, recovered = ledger(s), PAUSE, time.monotonic()
    while not led.finished(number):
        if deadline is not None and deadline.passed():
            return False
        time.sleep(pause)
        pause = min(MAX_PAUSE, 2 * pause)
        if time.monotonic() - recovered >= RECOVER:
            recover_stale(s)
            recovered = time.monotonic()
    return True
