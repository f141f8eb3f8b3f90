"""Which trials have results, and the Pareto front over them (Deb et al. 2002, non-domination).

A trial is *finished* when it trained every planned epoch and measured every objective: a
COMPLETE trial, or a PRUNED one whose ``epochs_run`` equals the planned epochs (a storage written
before pruning stopped deciding at the last epoch, or a Ray scheduler that stopped at ``max_t``)
and whose ``objectives`` attribute holds a finite value per objective. The summary, the Pareto
front, ``best/`` and the plots all read :func:`finished`, never ``study.best_trials`` (which sees
COMPLETE trials only).

``a`` dominates ``b`` when it is no worse in every objective and better in at least one:

    a ≻ b  ⇔  ∀i: a_i ⪰ b_i  ∧  ∃i: a_i ≻ b_i        (⪰: ≥ for maximize, ≤ for minimize)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from odeattn.study import SearchFailed, SetupError, StudyConfig, plan_for

__all__ = [
    "as_dict",
    "best_of",
    "check_outcome",
    "dominates",
    "feasible",
    "finished",
    "n_dominating",
    "pareto",
    "trial_values",
]


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether point ``a`` dominates point ``b`` (see the module docstring)."""
    sign = [1.0 if d == "maximize" else -1.0 for d in directions]
    ge = all(s * x >= s * y for s, x, y in zip(sign, a, b, strict=True))
    return ge and any(s * x > s * y for s, x, y in zip(sign, a, b, strict=True))


def _signed(points: Any, directions: Sequence[str]) -> np.ndarray:
    """``points`` as an (m, d) array in which larger is better in every column."""
    sign = np.asarray([1.0 if d == "maximize" else -1.0 for d in directions])
    return np.asarray(points, dtype=float).reshape(-1, len(sign)) * sign


def n_dominating(
    point: Sequence[float],
    others: Sequence[Sequence[float]] | np.ndarray,
    directions: Sequence[str],
) -> int:
    """How many of ``others`` dominate ``point`` (one vectorised pass, O(m·d))."""
    o, p = _signed(others, directions), _signed(point, directions)
    return int(((o >= p).all(axis=1) & (o > p).any(axis=1)).sum())


def feasible(t: FrozenTrial, study: StudyConfig) -> bool:
    """Whether ``t`` satisfies the study's ``constraints`` (always, without constraints)."""
    if not study.constraints:
        return True
    got = t.user_attrs.get("constraint_violations")
    return isinstance(got, list) and all(v is not None and float(v) <= 0 for v in got)


def trial_values(
    t: FrozenTrial, study: StudyConfig, epochs: int | None = None
) -> list[float] | None:
    """The objective values of ``t`` if it is finished (module docstring) and feasible (its
    constraints hold), else ``None``; ``epochs``: the planned epochs, if known."""
    if not feasible(t, study):
        return None
    if t.state == TrialState.COMPLETE and t.values is not None:
        return list(t.values)
    if t.state != TrialState.PRUNED:
        return None
    ua = t.user_attrs
    if int(ua.get("epochs_run") or 0) < (plan_for(study).epochs if epochs is None else epochs):
        return None
    got = ua.get("objectives") or ua.get("metrics") or {}
    vals = [got.get(n) for n in study.objective_names]
    if any(v is None or not math.isfinite(float(v)) for v in vals):
        return None
    return [float(v) for v in vals]


def finished(study: StudyConfig, s: optuna.Study) -> list[tuple[FrozenTrial, list[float]]]:
    """Every finished trial with its objective values, by trial number."""
    out = []
    epochs = plan_for(study).epochs  # once, not once per trial
    for t in s.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        v = trial_values(t, study, epochs)
        if v is not None:
            out.append((t, v))
    return out


def pareto(
    done: list[tuple[FrozenTrial, list[float]]], directions: Sequence[str]
) -> list[tuple[FrozenTrial, list[float]]]:
    """The non-dominated members of ``done`` (one objective: the best, ties kept), in their order.

    A dominator is lexicographically greater (in the "larger is better" signs of ``_signed``),
    so visiting the points in decreasing lexicographic order, every dominator of a point is
    visited before it, and if any dominates it, a member of the front found so far does
    (transitivity): each point is compared with the current front only, O(n·|front|·d) instead
    of the O(n²·d) of comparing every pair."""
    if not done:
        return []
    pts = _signed([v for _, v in done], directions)
    order = np.lexsort(pts.T[::-1])[::-1]  # decreasing lexicographic order
    front, m = np.empty_like(pts), 0  # front[:m]: the non-dominated points visited so far
    keep = np.zeros(len(pts), dtype=bool)
    for i in order:
        f, p = front[:m], pts[i]
        if not ((f >= p).all(axis=1) & (f > p).any(axis=1)).any():
            keep[i], front[m], m = True, p, m + 1
    return [tv for tv, k in zip(done, keep, strict=True) if k]


def best_of(study: StudyConfig, s: optuna.Study) -> list[tuple[FrozenTrial, list[float]]]:
    """The Pareto front (several objectives) or the best trial(s) (one) of the finished trials,
    each configuration once: a trial served from storage (``duplicate_of``) holds the values of
    the trial that trained its configuration, which stands for it (a 1,000-trial supernet study
    had 167 front entries for 11 configurations)."""
    done = [(t, v) for t, v in finished(study, s) if "duplicate_of" not in t.user_attrs]
    return pareto(done, study.directions)


def as_dict(values: Sequence[float], study: StudyConfig) -> dict[str, Any]:
    return dict(zip(study.objective_names, values, strict=True))


def check_outcome(study: StudyConfig, s: optuna.Study) -> None:
    """Raise when the search did not work: :class:`SetupError` when the latest trial failed in
    set-up, :class:`SearchFailed` when every trial failed (surplus, stale and set-up failures
    aside)."""
    trials = [
        t
        for t in s.get_trials(deepcopy=False)
        if not (t.user_attrs.get("odeattn_surplus") or t.user_attrs.get("odeattn_stale"))
    ]
    if trials and trials[-1].user_attrs.get("odeattn_setup"):
        raise SetupError(str(trials[-1].user_attrs.get("error", "trial set-up failed")))
    real = [t for t in trials if not t.user_attrs.get("odeattn_setup")]
    if real and all(t.state == TrialState.FAIL for t in real):
        first = str(real[0].user_attrs.get("error", "no error recorded")).splitlines()[0]
        raise SearchFailed(
            f"study {study.name!r}: all {len(real)} trials failed; the first: {first}"
        )
