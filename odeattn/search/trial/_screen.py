"""A trial's proxy screen: decided against the study's earlier scores, recorded in one write.

The screen (``study.screen``; TNS or a zero-cost proxy, Mellor et al. 2021 "NAS without
training") keeps a candidate when its score at init ranks among the best ``keep_fraction`` of
the scores seen so far (:class:`odeattn.proxies.Screen`: kept iff rank ≤ max(1, ⌈f·n_seen⌉),
the first ``warmup_trials`` always kept). :func:`screen_for` is the ``screen(score) -> kept``
both backends hand to ``run_trial``; they differ only in how they read the earlier scores
(``scores``: the optuna backend's study ledger, the Ray backend's read of the shared storage).
Each decision is stored as the trial's ``screen_*`` user attributes in one storage write
(``storage.set_user_attrs``, issue 20), a non-finite float as ``None`` (JSON has no NaN).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from odeattn.proxies import Screen as Rule
from odeattn.search.storage import set_user_attrs
from odeattn.search.trial._objective import Screen
from odeattn.study import StudyConfig

__all__ = ["screen_for"]


def screen_for(
    study: StudyConfig, trial: Any, scores: Callable[[], Sequence[float]]
) -> Screen | None:
    """``study.screen``'s decision for ``trial`` (``None`` without a screen): ``screen(score)``
    ranks ``score`` against ``scores()`` (read at each call), records the decision as ``trial``'s
    ``screen_*`` user attributes and returns whether the candidate is kept."""
    if study.screen is None:
        return None
    sc = study.screen
    rule = Rule(sc.keep_fraction, direction=sc.direction, warmup=sc.warmup_trials)

    def screen(score: float) -> bool:
        decision = rule.decide(score, scores())
        attrs = decision.as_user_attrs().items()
        set_user_attrs(  # one storage write (issue 20)
            trial,
            {k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in attrs},
        )
        return decision.kept

    return screen
