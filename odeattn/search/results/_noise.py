"""Noise as a first-class number: rank correlations with a CI, and the study's noise ceiling.

Every correlation is printed with its n and a bootstrap 95 % CI (percentile method, Efron &
Tibshirani 1993, ch. 13: resample the n pairs with replacement B times, τ of each resample, the
2.5th and 97.5th percentiles), or as "undefined" with the reason (n < 3, constant values), never
"nan".

The *noise ceiling* asks whether the study's ranking repeats. After the budget, ``noise.trials``
finished trials, spread evenly over the ranking of the first objective, are trained again with
fresh seeds (``seed + noise.seed_offset``, as many replicates as the study uses). Reported:
Kendall τ between the stored and the fresh values with its bootstrap CI, and the per-
configuration seed noise ``sd = sd(stored − fresh) / √2``. Two front members whose first
objectives differ by less than ``1.96 · √2 · sd`` are *within noise*. When the CI of τ contains
0 the study says plainly that its ranking does not repeat across seeds. The result is stored as
the study user attribute ``noise_ceiling`` (measured again only when more trials finished).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from scipy.stats import kendalltau

from odeattn.search.results._front import best_of, check_outcome, finished
from odeattn.search.trial import run_trial
from odeattn.study import StudyConfig, replicate_seeds, resolve_space

__all__ = ["conclude", "format_corr", "kendall_ci", "noise_lines"]


def kendall_ci(
    x: Sequence[float], y: Sequence[float], *, n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """``{"n", "tau", "lo", "hi"}`` (bootstrap 95 % CI) or ``{"n", "undefined": reason}``."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = int(a.size)
    if n < 3:
        return {"n": n, "undefined": "needs n ≥ 3"}
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"n": n, "undefined": "constant values"}
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        if np.ptp(a[i]) > 0 and np.ptp(b[i]) > 0:
            taus.append(kendalltau(a[i], b[i]).statistic)
    lo, hi = np.percentile(taus, [2.5, 97.5])
    return {"n": n, "tau": float(kendalltau(a, b).statistic), "lo": float(lo), "hi": float(hi)}


def format_corr(c: dict[str, Any], name: str = "Kendall τ") -> str:
    if "undefined" in c:
        return f"{name} undefined (n = {c['n']}: {c['undefined']})"
    return f"{name} = {c['tau']:.2f} [95 % CI {c['lo']:.2f}, {c['hi']:.2f}], n = {c['n']}"


def _sample(done: list, m: int) -> list:
    """``m`` of ``done`` evenly spread over the ranking of the first objective."""
    ranked = sorted(done, key=lambda tv: tv[1][0])
    grid = np.rint(np.linspace(0, len(ranked) - 1, min(m, len(ranked)))).astype(int)
    idx = sorted(set(grid.tolist()))
    return [ranked[i] for i in idx]


def _retrain(study: StudyConfig, t: Any, console: Any) -> float:
    base = t.user_attrs.get("seeds") or [t.user_attrs.get("seed")]
    seeds = replicate_seeds(
        None if base[0] is None else int(base[0]) + study.noise.seed_offset, study.replicates
    )
    name = study.objective_names[0]
    vals = [
        run_trial(study, dict(t.params), None, space=resolve_space(study), seed=sd)[name]
        for sd in seeds
    ]
    console.print(f"noise ceiling: trial {t.number} again with seeds {seeds}: {name} {vals}")
    return float(np.mean(vals))


def measure_ceiling(study: StudyConfig, s: optuna.Study, console: Any) -> dict[str, Any] | None:
    """Measure (once) and store the noise ceiling; ``None`` when off or too few trials."""
    done = [(t, v) for t, v in finished(study, s) if "duplicate_of" not in t.user_attrs]
    old = s.user_attrs.get("noise_ceiling")
    if old and old.get("finished") == len(done):
        return old  # measured on this set of trials already
    if study.noise.trials == 0 or len(done) < 3 or study.noise.trials < 3:
        return None
    pick = _sample(done, study.noise.trials)
    stored = [v[0] for _, v in pick]
    fresh = [_retrain(study, t, console) for t, _ in pick]
    diff = np.asarray(stored) - np.asarray(fresh)
    out = {
        "objective": study.objective_names[0],
        "trials": [t.number for t, _ in pick],
        "stored": stored,
        "fresh": fresh,
        "seed_sd": float(diff.std(ddof=1) / math.sqrt(2)),
        "replicates": study.replicates,
        "finished": len(done),
        **kendall_ci(stored, fresh, n_boot=study.noise.bootstrap),
    }
    s.set_user_attr("noise_ceiling", out)
    return out


def noise_lines(study: StudyConfig, s: optuna.Study) -> list[str]:
    """What the summary says about noise: the ceiling and whether the front is within it."""
    c = s.user_attrs.get("noise_ceiling")
    if not c:
        return [
            "noise ceiling: not measured (noise.trials: 0 or fewer than 3 finished trials)",
            *_relations(study, s),
        ]
    name, sd = c["objective"], c["seed_sd"]
    lines = [
        f"noise ceiling of {name} (seed to seed, {c['replicates']} replicate(s) per value): "
        f"{format_corr(c)}; seed sd per configuration {sd:.4g}"
    ]
    if "undefined" in c or c["lo"] <= 0.0:
        lines.append(
            f"the ranking of {name} does NOT repeat across seeds (the CI of τ reaches 0): the "
            f"configurations of this space are not distinguishable by {name} at this budget"
        )
    lines += _relations(study, s)
    front = [v[0] for _, v in best_of(study, s)]
    if len(front) >= 2:
        bar = 1.96 * math.sqrt(2) * sd
        pairs = [(a, b) for i, a in enumerate(front) for b in front[i + 1 :]]
        within = sum(abs(a - b) < bar for a, b in pairs)
        lines.append(
            f"front: {within} of {len(pairs)} pairs differ in {name} by less than "
            f"1.96·√2·sd = {bar:.3g}, i.e. within noise"
        )
    return lines


def _relations(study: StudyConfig, s: optuna.Study) -> list[str]:
    """Kendall τ (n, CI) of the first objective with each other one over the finished trials;
    a CI that contains 0 is said plainly: no detectable relation at this budget."""
    done = [v for _, v in finished(study, s)]
    names = study.objective_names
    out = []
    for j in range(1, len(names)):
        c = kendall_ci([v[0] for v in done], [v[j] for v in done], n_boot=study.noise.bootstrap)
        none = "undefined" in c or c["lo"] <= 0.0 <= c["hi"]
        out.append(
            f"{names[0]} vs {names[j]} over the finished trials: {format_corr(c)}"
            + ("  -> no detectable relation" if none else "")
        )
    return out


def conclude(study: StudyConfig, s: optuna.Study, console: Any) -> None:
    """After the backend: fail loudly (``check_outcome``), then measure the noise ceiling."""
    check_outcome(study, s)
    measure_ceiling(study, s, console)
