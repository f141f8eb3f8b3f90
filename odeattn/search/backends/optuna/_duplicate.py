"""Duplicates served from storage: a configuration proposed again is not retrained.

A configuration the sampler proposes again (same ``params``) is not retrained: the earlier
trial's values, state and attributes are served from storage and the new trial records
``duplicate_of``. Replicates (``search.trial.train_replicates``) are the way to spend more
compute on one configuration.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from odeattn.search.backends.optuna._ledger import ledger

__all__ = ["find_duplicate", "serve_duplicate"]

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
    """Tell ``trial`` the result ``src`` already holds (its values and state); returns the state."""
    for k in _COPIED:
        if k in src.user_attrs:
            trial.set_user_attr(k, src.user_attrs[k])
    trial.set_user_attr("duplicate_of", src.number)
    for key, value in (src.constraints or {}).items():  # the samplers' view of feasibility
        trial.set_constraint(key, value)
    if src.state == TrialState.COMPLETE:
        s.tell(trial, list(src.values))
    else:
        s.tell(trial, state=TrialState.PRUNED)
    return src.state
