"""Pruning that also works in multi-objective studies: a percentile rule on one declared metric.

Optuna's pruners refuse multi-objective studies (``Trial.report`` raises), so odeattn keeps the
per-epoch values of one declared metric in the trial's ``intermediate`` user attribute and applies
Optuna's percentile rule itself: at epoch e (after ``warmup_epochs``), with at least
``min_trials`` COMPLETE trials that reached epoch e, a trial is pruned when its best value so far
is worse than the p-th best percentile of their values at epoch e:

    maximize: prune if best_so_far < P_{100-p}(others_e)      minimize: prune if best_so_far > P_p(others_e)

(p = 50 is the median rule, as ``optuna.pruners.MedianPruner``.) The TNS screen's rule lives in
``odeattn.proxies.Screen``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["percentile_rule"]


def percentile_rule(
    values: Sequence[float],
    others: Sequence[float],
    *,
    direction: str,
    percentile: float,
    epoch: int,
    warmup_epochs: int,
    min_trials: int,
) -> bool:
    """Should a trial whose per-epoch values are ``values`` (epochs 1..e) stop at epoch e?"""
    vals = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    ref = np.asarray([v for v in others if np.isfinite(v)], dtype=float)
    if epoch <= warmup_epochs or len(ref) < min_trials or len(vals) == 0:
        return False
    if direction == "maximize":
        return bool(vals.max() < np.percentile(ref, 100.0 - percentile))
    return bool(vals.min() > np.percentile(ref, percentile))
