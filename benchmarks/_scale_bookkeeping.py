"""The worker loop's bookkeeping alone, before and after issue 20, on an in-memory study.

Per turn the loop asks: budget used, is the new trial surplus, was its configuration seen, and
(at each deciding epoch) the other trials' values at that epoch. Before issue 20 each question
was a scan of every trial (``scan_*`` below: the code of commit aeab055); now a
``backends.optuna._ledger.Ledger`` answers them, folding each finished trial in once. A study of
N finished trials (the fixture's space, a third PRUNED, per-epoch ``intermediate`` values) is
built in memory (so the storage costs nothing), then one turn is timed K times: one trial
finishes, the four questions are asked. Storage-free, so it isolates exactly what changed.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

KEYS = ["val_accuracy", "tns", "attention_blocks"]
DIST = {f"placement.s{s}.b{b}": CategoricalDistribution([0, 1]) for s in range(3) for b in range(3)}
DIST["lr"] = FloatDistribution(0.005, 0.3, step=0.005)


def _trial(rng: np.random.Generator) -> Any:
    params = {
        k: (int(rng.integers(2)) if k != "lr" else 0.005 * int(rng.integers(1, 61))) for k in DIST
    }
    inter = {k: [float(v) for v in rng.random(2)] for k in KEYS}
    pruned = rng.random() < 1 / 3
    return create_trial(
        state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
        values=None if pruned else [float(v) for v in rng.random(3)],
        params=params,
        distributions=DIST,
        user_attrs={
            "intermediate": inter,
            "objectives": dict(zip(KEYS, rng.random(3), strict=True)),
        },
    )


def _at(hist: dict, key: str, epoch: int) -> float | None:
    vals = hist.get(key) or []
    v = vals[epoch - 1] if len(vals) >= epoch else None
    return float(v) if v is not None and math.isfinite(v) else None


def scans(s: optuna.Study, params: dict, number: int) -> None:
    """The four questions as the loop asked them before issue 20 (one scan each)."""
    from odeattn.search.storage import budget_used, counts

    budget_used(s)
    sum(t.number <= number and counts(t) for t in s.get_trials(deepcopy=False))
    done = (TrialState.COMPLETE, TrialState.PRUNED)
    next((t for t in s.get_trials(deepcopy=False, states=done) if t.params == params), None)
    others = [
        t.user_attrs.get("intermediate") or {}
        for t in s.get_trials(deepcopy=False, states=(*done, TrialState.RUNNING))
        if t.number != number
    ]
    [v for v in ([_at(h, k, 2) for k in KEYS] for h in others) if None not in v]


def ledger_turn(s: optuna.Study, params: dict, number: int) -> None:
    """The same four questions through the ledger (what the loop asks now)."""
    from odeattn.search.backends.optuna._ledger import ledger

    led = ledger(s)
    led.budget_used()
    led.refresh()
    led.counted_up_to(number)
    led.duplicate(params, number)
    led.reference(KEYS, 2, number)


def bookkeeping(ns: list[int], turns: int = 30) -> list[dict[str, Any]]:
    """ms per turn, old scans and ledger, at each study size in ``ns``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng, rows = np.random.default_rng(0), []
    for n in ns:
        out: dict[str, Any] = {"finished_trials": n}
        for name, fn in (("scans_ms", scans), ("ledger_ms", ledger_turn)):
            s = optuna.create_study(directions=["maximize", "maximize", "minimize"])
            s.add_trials([_trial(rng) for _ in range(n)])
            fn(s, {}, n)  # the ledger's first refresh folds in the existing trials once
            times = []
            for _ in range(turns):
                t = _trial(rng)
                s.add_trial(t)
                t0 = time.perf_counter()
                fn(s, t.params, n)
                times.append(1e3 * (time.perf_counter() - t0))
            out[name] = round(statistics.median(times), 4)
        rows.append(out)
    return rows


def _sampler(name: str) -> Any:
    from odeattn.search.backends.optuna._sampler import RecentTrials

    if name == "tpe-history-1000":
        return RecentTrials(optuna.samplers.TPESampler(seed=0), 1000)
    cls = {"tpe": "TPESampler", "nsga2": "NSGAIISampler", "random": "RandomSampler"}[name]
    return getattr(optuna.samplers, cls)(seed=0)


def sampler_cost(ns: list[int], names: list[str], asks: int = 3) -> list[dict[str, Any]]:
    """ms per ask (sampling the fixture's 10 parameters, Optuna's defaults: TPE with
    ``constant_liar``) of each sampler on an in-memory study of n finished trials, 3 objectives."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for name in names:
        rng = np.random.default_rng(0)
        s = optuna.create_study(directions=["maximize", "maximize", "minimize"])
        s.sampler, have = _sampler(name), 0
        for n in ns:
            s.add_trials([_trial(rng) for _ in range(n - have)])
            t0 = time.perf_counter()
            for _ in range(asks):
                s.tell(s.ask(DIST), [0.5, 0.5, 3.0])
            have = n + asks
            rows.append({"sampler": name, "finished_trials": n})
            rows[-1]["ms_per_ask"] = round(1e3 * (time.perf_counter() - t0) / asks, 2)
    return rows


def _done(rng: np.random.Generator, number: int) -> Any:
    """A COMPLETE, feasible trial as a search stores it: values, the attributes the results read."""
    v = [0.9 + 0.1 * float(rng.random()), float(rng.random()), float(rng.integers(0, 10))]
    placement = "".join(str(int(b)) for b in rng.integers(0, 2, 9))
    arch = {"name": "digits_resnet", "adaptor": "se", "blocks": [3, 3, 3], "placement": placement}
    attrs = {"objectives": dict(zip(KEYS, v, strict=True)), "architecture": arch, "epochs_run": 3}
    attrs |= {"seeds": [number], "threads": 1, "placement": placement, "params": 1000, "tns": v[1]}
    attrs |= {"val_accuracy": v[0], "constraint_violations": [0.9 - v[0]]}
    params = {
        k: (int(rng.integers(2)) if k != "lr" else 0.005 * int(rng.integers(1, 61))) for k in DIST
    }
    return create_trial(values=v, params=params, distributions=DIST, user_attrs=attrs)


def _time_steps(study: Any, s: optuna.Study) -> dict[str, Any]:
    from odeattn.search.results import (
        best_of,
        export_best,
        finished,
        study_plots,
        summary_table,
        write_summary,
    )

    row: dict[str, Any] = {}
    for name, fn in (
        ("finished", lambda: finished(study, s)),
        ("front", lambda: best_of(study, s)),
        ("summary", lambda: write_summary(study, s, summary_table(study, s))),
        ("export_best", lambda: export_best(study, s)),
        ("plots", lambda: study_plots(study, s)),
    ):
        t0 = time.perf_counter()
        fn()
        row[f"{name}_s"] = round(time.perf_counter() - t0, 3)
    return row | {"front_size": len(best_of(study, s))}


def results_cost(study_file: str, ns: list[int]) -> list[dict[str, Any]]:
    """Seconds of each end-of-search step on an in-memory study of n COMPLETE trials (the worst
    case: every trial finished; the study's 3 objectives and its constraint)."""
    from odeattn.study import load_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = load_study(study_file)
    rng, rows = np.random.default_rng(1), []
    for n in ns:
        s = optuna.create_study(study_name=study.name, directions=study.directions)
        s.add_trials([_done(rng, i) for i in range(n)])
        rows.append({"finished_trials": n} | _time_steps(study, s))
    return rows
