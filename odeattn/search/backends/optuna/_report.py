"""What a trial reports while it trains on the optuna backend: per-epoch values, pruning, screen.

``report_fn`` is the ``report(epoch, metrics) -> should_stop`` handed to ``train_replicates``: it
keeps the per-epoch values the pruning rules read in the ``intermediate`` attribute, reports the
learning curve to Optuna (single-objective studies) and applies the rule (``_prune.decide``).
The attribute is stored at once at an epoch a rule may decide (the other workers read a running
trial's values there) and whenever :data:`LIVE_S` seconds have passed since it was last stored
(what the dashboard shows of a running trial); otherwise it waits for the trial's next write
(``storage.defer_user_attrs``: its results, or its tell), so a trial of short epochs spends no
storage write on the warm-up or the last epoch (issue 20). What is stored in the end is the same.
``screen_fn`` is the proxy screen (``search.trial.screen_for``) read against the scores the
study's ledger holds so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import optuna

from odeattn.search.backends.optuna._ledger import ledger
from odeattn.search.backends.optuna._prune import decide, may_decide
from odeattn.search.storage import defer_user_attrs, set_user_attrs
from odeattn.search.trial import screen_for
from odeattn.study import STIFFNESS_METRICS, StudyConfig, plan_for

__all__ = ["report_fn", "screen_fn"]

Progress = Callable[[str, dict[str, Any]], None]

#: Seconds after which a running trial's ``intermediate`` attribute is stored at its next epoch.
LIVE_S = 1.0


def _screen_scores(s: optuna.Study) -> list[float]:
    return ledger(s).screen_scores()  # COMPLETE and PRUNED trials' screen_score, incrementally


def _per_epoch(study: StudyConfig, key: str, metrics: dict[str, float], epoch: int) -> Any:
    """The value a pruning rule reads for ``key`` (an objective name or the pruning metric)."""
    v = metrics.get(key)
    if v is None and "@" not in key and key in STIFFNESS_METRICS:
        v = metrics.get(f"{key}@{epoch}")  # an end-of-training stiffness objective, this epoch
    return v if v is not None and math.isfinite(v) else None


def _read_by_rules(study: StudyConfig, epoch: int) -> bool:
    """Whether a pruning rule may read the running trials' values at ``epoch``."""
    p = study.pruning
    last = plan_for(study).epochs
    return p is not None and may_decide(epoch, warmup_epochs=p.warmup_epochs, last_epoch=last)


def report_fn(
    study: StudyConfig, s: optuna.Study, trial: optuna.Trial, progress: Progress, state: dict
) -> Callable[[int, dict[str, float]], bool]:
    """The per-epoch ``report``: short ``intermediate`` attribute, Optuna report, pruning rule."""
    keys = [*study.objective_names, *([study.pruning.metric] if study.pruning else [])]
    seen: dict[str, list[Any]] = {}
    single = len(study.directions) == 1
    stored = [time.monotonic()]  # when the attribute was last stored

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        for k in dict.fromkeys(keys):
            seen.setdefault(k, []).append(_per_epoch(study, k, metrics, epoch))
        if _read_by_rules(study, epoch) or time.monotonic() - stored[0] >= LIVE_S:
            set_user_attrs(trial, {"intermediate": seen})
            stored[0] = time.monotonic()
        else:
            defer_user_attrs(trial, {"intermediate": seen})
        key = study.pruning.metric if study.pruning else study.objectives[0].name
        if single and seen[key][-1] is not None:
            trial.report(seen[key][-1], epoch)  # the dashboard's learning curve (one objective)
        progress("epoch", {"trial": trial.number, "epoch": epoch, **metrics})
        state["pruned"] = decide(study, s, trial.number, seen, epoch)
        return state["pruned"]

    return report


def screen_fn(study: StudyConfig, s: optuna.Study, trial: optuna.Trial) -> Any:
    """The trial's ``screen(score) -> kept`` (``None`` without ``study.screen``), ranked against
    the COMPLETE and PRUNED trials' ``screen_score`` in the study's ledger."""
    return screen_for(study, trial, lambda: _screen_scores(s))
