"""Pruning that saves work and works in multi-objective studies: two rules odeattn applies itself.

Optuna's pruners refuse multi-objective studies (``Trial.report`` raises), so odeattn keeps the
per-epoch values a rule needs in the trial's ``intermediate`` user attribute and decides itself.
Both rules share three guards:

* a decision is taken only at epochs ``warmup_epochs < e < E`` (E: the planned epochs), so a
  trial that trained to the end is never pruned: pruning exists to save epochs, and a finished
  trial's results always reach the front;
* the reference set is **every** other trial that reported epoch e — COMPLETE, PRUNED and still
  RUNNING alike — not only the completed ones (comparing against completed trials only makes the
  bar ratchet upwards, since the worse ones are the pruned ones);
* at least ``min_trials`` reference values at epoch e.

``percentile`` (``rule: median`` is p = 50, as ``optuna.pruners.MedianPruner``) on one metric:

    maximize: prune if best_so_far < P_{100-p}(others_e)      minimize: prune if best_so_far > P_p(others_e)

``dominated`` (front-respecting, for several objectives): at epoch e the trial's objective vector
(per-epoch values; static ones such as ``attention_blocks``; stiffness objectives measured that
epoch) is compared with the others' vectors at epoch e, and the trial is pruned only when at least
``k`` of them dominate it (Pareto dominance, ``_front.dominates``). With ``k = 1`` it stops
everything not on the epoch-e front; a larger ``k`` keeps near-front trials (the second, third …
non-dominated layers, in the spirit of NSGA-II's ranking, Deb et al. 2002).

The TNS screen's rule lives in ``odeattn.proxies.Screen``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna

from odeattn.search.backends.optuna._ledger import ledger, row
from odeattn.search.results import n_dominating
from odeattn.study import StudyConfig, plan_for

__all__ = ["decide", "dominated_rule", "may_decide", "percentile_rule"]


def may_decide(epoch: int, *, warmup_epochs: int, last_epoch: int) -> bool:
    """Whether a rule may stop a trial at ``epoch``: after the warm-up and before the last epoch."""
    return warmup_epochs < epoch < last_epoch


def percentile_rule(
    values: Sequence[float],
    others: Sequence[float] | np.ndarray,
    *,
    direction: str,
    percentile: float,
    epoch: int,
    warmup_epochs: int,
    min_trials: int,
    last_epoch: int,
) -> bool:
    """Should a trial whose per-epoch values are ``values`` (epochs 1..e) stop at epoch e?"""
    vals = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    ref = np.asarray(others, dtype=float).ravel()  # None -> nan, dropped below
    ref = ref[np.isfinite(ref)]
    if not may_decide(epoch, warmup_epochs=warmup_epochs, last_epoch=last_epoch):
        return False
    if len(ref) < min_trials or len(vals) == 0:
        return False
    if direction == "maximize":
        return bool(vals.max() < np.percentile(ref, 100.0 - percentile))
    return bool(vals.min() > np.percentile(ref, percentile))


def dominated_rule(
    point: Sequence[float],
    others: Sequence[Sequence[float]] | np.ndarray,
    *,
    directions: Sequence[str],
    k: int,
    epoch: int,
    warmup_epochs: int,
    min_trials: int,
    last_epoch: int,
) -> bool:
    """Should a trial whose objective vector at epoch e is ``point`` stop there (``k`` dominators)?"""
    ok = np.asarray(others, dtype=float).reshape(-1, len(point))  # None -> nan
    ok = ok[np.isfinite(ok).all(axis=1)]
    if not may_decide(epoch, warmup_epochs=warmup_epochs, last_epoch=last_epoch):
        return False
    if len(ok) < min_trials or not all(v is not None and np.isfinite(v) for v in point):
        return False
    return n_dominating(point, ok, directions) >= k


def decide(
    study: StudyConfig, s: optuna.Study, number: int, seen: dict[str, list[Any]], epoch: int
) -> bool:
    """The pruning decision at ``epoch`` against every other trial that reported it (``_prune``;
    the reference set comes from the study's :class:`~._ledger.Ledger`, read only at epochs a
    rule may decide)."""
    p = study.pruning
    if p is None:
        return False
    guard = dict(epoch=epoch, warmup_epochs=p.warmup_epochs, min_trials=p.min_trials)
    guard["last_epoch"] = plan_for(study).epochs
    if not may_decide(epoch, warmup_epochs=p.warmup_epochs, last_epoch=guard["last_epoch"]):
        return False
    if p.rule == "dominated":
        point = row(seen, study.objective_names, epoch)
        if point is None:
            return False
        ref = ledger(s).reference(study.objective_names, epoch, number)
        return dominated_rule(point, ref, directions=study.directions, k=p.k, **guard)
    ref = ledger(s).reference([p.metric], epoch, number)[:, 0]
    pct = p.percentile if p.rule == "percentile" else 50.0
    return percentile_rule(
        seen.get(p.metric, []), ref, direction=study.pruning_direction, percentile=pct, **guard
    )
