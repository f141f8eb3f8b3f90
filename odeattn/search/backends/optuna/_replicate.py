"""Seeds as a declared part of a result: replicates, duplicates served from storage.

``replicates: k`` trains each configuration with k seeds (``TrialPlan.seeds``: ``seed_r = seed + r · STRIDE``); the
objective is the mean over seeds and its standard error ``SE = sd / √k`` is stored next to it
(``objectives_se``; with k = 1 the SE is undefined and left out). Pruning decisions use the first
replicate's per-epoch values (later replicates run only when the first was not pruned).

A configuration the sampler proposes again (same ``params``) is not retrained: the earlier
trial's values, state and attributes are served from storage and the new trial records
``duplicate_of``. Replicates are the way to spend more compute on one configuration.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from odeattn.study.config import StudyConfig

__all__ = ["aggregate", "find_duplicate", "serve_duplicate"]

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
    "architecture",
    "train_overrides",
    "intermediate",
    "seed",
    "seeds",
    "threads",
)


def aggregate(study: StudyConfig, outs: list[dict[str, float]]) -> dict[str, Any]:
    """The first replicate's measurements with every objective replaced by the mean over
    replicates; ``objectives_se`` holds sd/√k (k ≥ 2) and ``replicate_values`` each value."""
    out: dict[str, Any] = dict(outs[0])
    se: dict[str, float] = {}
    per: dict[str, list[float]] = {}
    for name in study.objective_names:
        vals = np.asarray([o.get(name, math.nan) for o in outs], dtype=float)
        per[name] = [float(v) for v in vals]
        out[name] = float(vals.mean())
        if len(vals) >= 2:
            se[name] = float(vals.std(ddof=1) / math.sqrt(len(vals)))
    out["seconds"] = float(sum(o.get("seconds", 0.0) for o in outs))  # all replicates
    out["objectives_se"] = se
    out["replicate_values"] = per
    return out


def find_duplicate(s: optuna.Study, trial: optuna.Trial) -> FrozenTrial | None:
    """The earliest COMPLETE or PRUNED trial with exactly ``trial``'s params (and not itself)."""
    for t in s.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if t.number != trial.number and t.params == trial.params:
            return t
    return None


def serve_duplicate(s: optuna.Study, trial: optuna.Trial, src: FrozenTrial) -> TrialState:
    """Tell ``trial`` the result ``src`` already holds (its values and state); returns the state."""
    for k in _COPIED:
        if k in src.user_attrs:
            trial.set_user_attr(k, src.user_attrs[k])
    trial.set_user_attr("duplicate_of", src.number)
    if src.state == TrialState.COMPLETE:
        s.tell(trial, list(src.values))
    else:
        s.tell(trial, state=TrialState.PRUNED)
    return src.state
