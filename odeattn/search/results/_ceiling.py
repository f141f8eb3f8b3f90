"""The study's noise ceiling: does its ranking repeat when configurations are trained again?

After the budget, ``noise.trials`` finished trials (``"auto"``: :func:`planned_retrains`), spread
evenly over the ranking of the first objective, are trained again with fresh seeds: trial n's
plan seeds shifted by ``noise.seed_offset``,

    seeds'(n) = replicate_seeds(plan.seed(n) + seed_offset, replicates)

(``search.trial.retrain``: the replicate loop both backends run). The retrains run through the
study's backend (a ``runner``, chosen by ``search._retrains``) before the invocation's deadline
(``budget.timeout``): one whose expected duration (its trial's training ``seconds``) does not fit
is not started. Each finished retrain is stored at once in the study user attribute
``noise_retrains`` (``{trial number: {seeds, value | error}}``), so a ceiling cut short by Ctrl-C
or the timeout is completed by the next invocation without training again what finished. The
ceiling (``_noise``: Kendall τ of stored vs fresh values with its bootstrap CI, seed sd =
sd(stored − fresh)/√2) is stored as ``noise_ceiling`` with ``planned`` and ``ran``, and measured
again only when more trials finished or planned retrains are missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna

from odeattn.search.results._front import check_outcome, finished
from odeattn.search.results._noise import kendall_ci, planned_retrains
from odeattn.search.trial import Deadline, Retrain, retrain
from odeattn.study import StudyConfig, plan_for, replicate_seeds

__all__ = ["Runner", "conclude", "fresh_seeds", "measure_ceiling"]

#: ``runner(study, jobs, deadline, done)``: run each job, call ``done(job, outcome)`` here.
Runner = Callable[[StudyConfig, list[Retrain], Deadline, Callable[[Retrain, dict], None]], None]


def fresh_seeds(study: StudyConfig, number: int) -> list[int | None]:
    """The seeds of trial ``number``'s retrain (module docstring)."""
    plan = plan_for(study)
    base = plan.seed(number)
    offset = None if base is None else base + study.noise.seed_offset
    return replicate_seeds(offset, plan.replicates)


def _sample(done: list, m: int) -> list:
    """``m`` of ``done`` evenly spread over the ranking of the first objective."""
    ranked = sorted(done, key=lambda tv: tv[1][0])
    grid = np.rint(np.linspace(0, len(ranked) - 1, min(m, len(ranked)))).astype(int)
    return [ranked[i] for i in sorted(set(grid.tolist()))]


def _expected_s(t: optuna.trial.FrozenTrial) -> float:
    """A retrain's expected seconds: the trial's training ``seconds`` (else its duration)."""
    if t.user_attrs.get("seconds") is not None:
        return float(t.user_attrs["seconds"])
    return t.duration.total_seconds() if t.duration is not None else 0.0


def _result(study: StudyConfig, cache: dict, number: int) -> dict | None:
    """The stored outcome of trial ``number``'s retrain with today's fresh seeds, if any."""
    got = cache.get(str(number))
    return got if got is not None and got.get("seeds") == fresh_seeds(study, number) else None


def _jobs(study: StudyConfig, pick: list, cache: dict) -> list[Retrain]:
    return [
        Retrain(t.number, dict(t.params), tuple(fresh_seeds(study, t.number)), _expected_s(t))
        for t, _ in pick
        if _result(study, cache, t.number) is None
    ]


def _in_process(study: StudyConfig, jobs: list[Retrain], deadline: Deadline, done: Any) -> None:
    for job in jobs:
        done(job, retrain(study, job, deadline))


def _record(study: StudyConfig, s: optuna.Study, cache: dict, console: Any) -> Any:
    """``done(job, outcome)``: store a finished retrain at once; count the skipped ones."""
    name = study.objective_names[0]

    def done(job: Retrain, outcome: dict[str, Any]) -> None:
        if "skipped" in outcome:
            return  # not started, or stopped at the deadline: the next invocation runs it
        cache[str(job.number)] = {"seeds": list(job.seeds), **outcome}
        s.set_user_attr("noise_retrains", cache)
        got = f"{name} {outcome['value']:.4g}" if "value" in outcome else outcome["error"]
        console.print(
            f"noise ceiling: trial {job.number} again with seeds {list(job.seeds)}: {got}",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )

    return done


def _ceiling(study: StudyConfig, pick: list, cache: dict, n_finished: int) -> dict[str, Any]:
    """The record stored as ``noise_ceiling`` from the retrains that finished."""
    ran, stored, fresh, failed = [], [], [], {}
    for t, v in pick:
        got = _result(study, cache, t.number) or {}
        if "value" in got:
            ran.append(t.number)
            stored.append(v[0])
            fresh.append(float(got["value"]))
        elif "error" in got:
            failed[str(t.number)] = got["error"]
    diff = np.asarray(stored) - np.asarray(fresh)
    return {
        "objective": study.objective_names[0],
        "trials": ran,
        "stored": stored,
        "fresh": fresh,
        "seed_sd": float(diff.std(ddof=1) / math.sqrt(2)) if len(diff) >= 2 else None,
        "replicates": plan_for(study).replicates,
        "finished": n_finished,
        "planned": len(pick),
        "ran": len(ran),
        "failed": failed,
        **kendall_ci(stored, fresh, n_boot=study.noise.bootstrap),
    }


def _complete(c: dict[str, Any]) -> bool:
    """Whether every planned retrain of a stored ceiling has an outcome (older records: yes)."""
    return c.get("ran", 0) + len(c.get("failed", {})) >= c.get("planned", 0)


def measure_ceiling(
    study: StudyConfig,
    s: optuna.Study,
    console: Any,
    runner: Runner | None = None,
    deadline: Deadline | None = None,
) -> dict[str, Any] | None:
    """Measure and store the noise ceiling (module docstring); ``None`` when it is off or fewer
    than 3 trials finished. ``runner`` (default: one retrain after another in this process)."""
    done = [(t, v) for t, v in finished(study, s) if "duplicate_of" not in t.user_attrs]
    old = s.user_attrs.get("noise_ceiling")
    if old and old.get("finished") == len(done) and _complete(old):
        return old  # measured on this set of trials already
    m = planned_retrains(study)
    if m < 3 or len(done) < 3:
        return None
    pick = _sample(done, m)
    cache = dict(s.user_attrs.get("noise_retrains") or {})
    jobs = _jobs(study, pick, cache)
    if jobs:
        (runner or _in_process)(
            study, jobs, deadline or Deadline(), _record(study, s, cache, console)
        )
    out = _ceiling(study, pick, cache, len(done))
    s.set_user_attr("noise_ceiling", out)
    return out


def conclude(
    study: StudyConfig,
    s: optuna.Study,
    console: Any,
    runner: Runner | None = None,
    deadline: Deadline | None = None,
) -> None:
    """After the backend: fail loudly (``check_outcome``), then measure the noise ceiling through
    ``runner`` (the backend's) before ``deadline``."""
    check_outcome(study, s)
    measure_ceiling(study, s, console, runner, deadline)
