"""Part (b) of issue 19's evidence: one-shot vs TPE and random search from scratch at equal wall time.

Each run is the search's own entry point, ``odeattn.search.run_search``, on a variant of the
study (:func:`search_study`): one objective (validation accuracy, maximised), ``budget.timeout``
= the size's seconds (*stop at T*; step 1's supernet training counts in it), ``n_trials`` out of
reach, one replicate a trial, no noise ceiling, no step 3 (every arm's best is retrained alike,
afterwards). ``oneshot``: ``strategy: supernet`` with the study's supernet settings and EAN's
controller (``sampler: reinforce`` with the study's kwargs), supernet and controller seeded with
the search seed; ``tpe`` / ``random``: ``strategy: scratch`` with Optuna's sampler of that name,
seeded alike. Each worker pays its first-use costs (:func:`warm`) before a run's clock starts.
A run's folder is deleted before it starts, so an interrupted run starts over with
its whole budget; a finished one is stored whole as ``<arm>_seed<k>.json``: finished trials,
distinct architectures, the best trial's params and value (a supernet score, or the accuracy of
one training: a maximum of noisy values, biased upwards — why every best is retrained), the
search's wall time, the supernet's training time, the load average and the provenance. Runs go
``jobs`` at a time,
interleaved by seed, then arm, so that a shared machine's load hits every arm alike. Not
bit-reproducible: what a run trains in T depends on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from optuna.trial import TrialState
from rich.console import Console

from odeattn.experiments._oneshot_plan import SEARCH_ARMS
from odeattn.experiments._oneshot_runs import one_thread, store_record, study_variant
from odeattn.experiments._pool import run_jobs
from odeattn.search import resolve_space, run_search
from odeattn.study import StudyConfig, data_for
from odeattn.supernet import supernet_plan

__all__ = ["best_of", "search_runs", "search_study", "warm"]

OUT_OF_REACH = 1_000_000  # n_trials: the wall time is the budget


def search_study(
    base: StudyConfig, arm: str, seed: int, seconds: float, folder: str | Path
) -> StudyConfig:
    """The study one run of ``arm`` with search seed ``seed`` searches (module docstring)."""
    if arm not in SEARCH_ARMS:
        raise ValueError(f"`arm` must be one of {list(SEARCH_ARMS)}, but got arm={arm!r}")
    common: dict[str, Any] = {
        "name": f"{arm}_seed{seed}",
        "runs_dir": str(Path(folder).resolve()),
        "storage": None,
        "objectives": [{"metric": "val_accuracy", "direction": "maximize"}],
        "budget": {"n_trials": OUT_OF_REACH, "timeout": float(seconds)},
        "noise": {"trials": 0},
        "replicates": 1,
        "workers": 1,
        "backend": "optuna",
    }
    if arm == "oneshot":
        sn = {"seed": seed, "top_k": 0}
        return study_variant(
            base, **common, strategy="supernet", supernet=sn, sampler={"seed": seed}
        )
    sampler = {"name": arm, "seed": seed, "kwargs": {}, "history": None}
    return study_variant(base, **common, strategy="scratch", supernet=None, sampler=sampler)


def best_of(trials: list[Any]) -> Any | None:
    """The finished trial with the highest value (the earliest of ties), or None."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    return max(done, key=lambda t: (t.values[0], -t.number)) if done else None


def warm(study: StudyConfig) -> None:
    """Pay a process's first-use costs before the clock starts, alike for every arm: the data
    set, and ``torch._dynamo``'s import by the first optimizer (≈ 5 s idle, ≈ 20 s at load 15:
    the first run of each worker would lose that much of its T)."""
    data_for(study)
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def _search_to_file(doc: dict, file: str, arm: str, seed: int, path: str) -> None:
    study = StudyConfig.model_validate({**doc, "file": file})
    shutil.rmtree(study.run_dir, ignore_errors=True)  # a partial run starts over
    warm(study)
    t0 = time.perf_counter()
    with one_thread():
        s = run_search(study, resolve_space(study), console=Console(quiet=True), progress=False)
        elapsed = time.perf_counter() - t0
        _store(study, s, arm, seed, elapsed, path)


def _store(study: StudyConfig, s: Any, arm: str, seed: int, elapsed: float, path: str) -> None:
    trials = s.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    best = best_of(trials)
    sn = supernet_plan(study).done_file if study.strategy == "supernet" else None
    record = {
        "arm": arm,
        "seed": seed,
        "seconds": study.budget.timeout,
        "elapsed": elapsed,
        "trials": len(done),
        "distinct": len({json.dumps(t.params, sort_keys=True) for t in done}),
        "best": None if best is None else dict(best.params),
        "best_value": None if best is None else float(best.values[0]),
        "best_trial": None if best is None else best.number,
        "supernet_seconds": json.loads(sn.read_text())["train_seconds"] if sn else None,
        "load_average": os.getloadavg()[0],  # the machine's 1-min load when the run ended
    }
    store_record(Path(path), record)


def search_runs(
    base: StudyConfig, seeds: int, seconds: float, folder: str | Path, jobs: int = 1
) -> dict[str, list[dict[str, Any]]]:
    """Run (or resume) every (arm, seed); ``{arm: [record of seed 0, …]}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = {
        (a, s): folder / f"{a}_seed{s}_T{seconds:g}.json" for s in range(seeds) for a in SEARCH_ARMS
    }
    todo = []
    for (arm, seed), p in path.items():  # seed-major: the arms interleaved
        if not p.is_file():
            st = search_study(base, arm, seed, seconds, folder / "runs")
            todo.append((st.model_dump(exclude={"file"}), st.file, arm, seed, str(p)))
    for _ in run_jobs(_search_to_file, todo, jobs):
        pass
    return {a: [json.loads(path[a, s].read_text()) for s in range(seeds)] for a in SEARCH_ARMS}
