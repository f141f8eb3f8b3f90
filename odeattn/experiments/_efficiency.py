"""Search efficiency (issue 14 §3): does screening by a proxy find better networks at equal time?

Each *arm* runs TPE (Bergstra et al. 2011; Optuna's ``TPESampler``) over one search space for the
same wall-clock budget T, once per sampler seed. Before training, a candidate is scored at
initialisation and passed through :class:`odeattn.proxies.Screen` (keep the best
``keep_fraction`` of those seen so far, the first ``warmup`` always): ``none`` trains every
candidate, ``tns`` screens by TNS at init (as ``studies/tns_proxy.yaml`` does), ``random`` by a
uniform random score (the control: the same training time saved, no information), and any other
name of :data:`odeattn.proxies.PROXIES` by that proxy. A rejected candidate is told to TPE as
PRUNED. Recorded per trained candidate: elapsed seconds, validation accuracy, parameters and
the sampled architecture; the curves are best-so-far accuracy and the 2-D hypervolume of
(accuracy ↑, log10 params ↓) against time, mean ± 95 % CI (Student t) over seeds. Each (study,
arm, seed) run is stored as JSON when done, so a re-run only runs what is missing.

Two studies per arm and seed (``studies``): ``single`` — TPE on validation accuracy alone, for
the best-so-far curve — and ``multi`` — multi-objective TPE (Ozaki et al. 2020; Optuna's
``TPESampler`` with two directions) on (accuracy ↑, log10 params ↓), whose hypervolume on that
plane is the multi-objective curve. Every run trains on one torch thread (with ``jobs > 1`` in
that many processes), arms interleaved so that every arm shares the machine alike, and is stored
with its provenance. Unlike the claims, a run is NOT reproducible bit for bit: its budget is wall
time, so how many candidates it trains depends on the machine and its load.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from odeattn._errors import must, unknown_name
from odeattn.experiments._bench import BenchConfig, bench_study
from odeattn.experiments._pool import run_jobs
from odeattn.experiments._provenance import provenance, stable
from odeattn.proxies import PROXIES, Screen
from odeattn.search import Space, resolve_space, run_trial, sample
from odeattn.search.trial import build, stiffness
from odeattn.study import data_for, input_batch

__all__ = [
    "STUDIES",
    "EffConfig",
    "bench_config",
    "curves",
    "hypervolume",
    "preflight",
    "run_efficiency",
    "run_provenance",
]

BASE_ARMS = ("none", "tns", "random")
STUDIES = ("single", "multi")


@dataclass(frozen=True)
class EffConfig:
    """Arms × sampler seeds, each with ``seconds`` of wall time, on ``space``."""

    space: str
    seconds: float
    seeds: int = 5
    epochs: int = 3
    arms: tuple[str, ...] = ("none", "tns", "random", "synflow")
    keep_fraction: float = 0.5
    warmup: int = 4
    out: str = "runs/evidence/efficiency"
    data: str = "digits"
    model: str = "digits_resnet"
    recipe: str = "digits"
    device: str = "cpu"
    studies: tuple[str, ...] = STUDIES
    jobs: int = 1
    fresh: tuple[int, ...] = (100, 101, 102)  # retrain seeds of each single run's best

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.seeds < 2 or self.epochs < 1 or self.jobs < 1:
            raise must(
                "seconds, seeds, epochs, jobs",
                "be > 0, >= 2, >= 1, >= 1",
                (self.seconds, self.seeds, self.epochs, self.jobs),
            )
        if len(set(self.fresh)) != len(self.fresh) or any(f < 0 for f in self.fresh):
            raise must("fresh (--retrain-seeds)", "be distinct seeds >= 0, or empty", self.fresh)
        if not self.studies:
            raise must("studies", f"name at least one of {list(STUDIES)}", self.studies)
        for kind in self.studies:
            if kind not in STUDIES:
                raise unknown_name("study", kind, STUDIES)
        for arm in self.arms:
            if arm not in BASE_ARMS and arm not in PROXIES:
                raise unknown_name("screen arm", arm, [*BASE_ARMS, *PROXIES])
        BenchConfig(space=self.space, n=1, epochs=self.epochs, seeds=2)  # validates the space path


def _scorer(arm: str, study: Any, space: Space, seed: int):
    data = data_for(study)
    x, y = input_batch(data, 32), data.val.y[:32].long()
    rng = random.Random(seed)

    def score(params: dict[str, Any]) -> float:
        if arm == "random":
            return rng.random()
        torch.manual_seed(seed)
        model, _ = build(study, space, params, data)
        if arm == "tns":  # as the search's screen computes it (no measured block: NaN, dropped)
            return stiffness(model, x, kind="step", p_hat_m=(0.0, 0.0), bn_mode="train")["tns"]
        return float(PROXIES[arm](model, x, y))

    return score


def bench_config(cfg: EffConfig) -> BenchConfig:
    """The benchmark settings whose study every candidate of ``cfg`` is trained as a trial of."""
    return BenchConfig(
        space=cfg.space,
        n=1,
        epochs=cfg.epochs,
        seeds=2,
        data=cfg.data,
        model=cfg.model,
        recipe=cfg.recipe,
        device=cfg.device,
    )


def preflight(cfg: EffConfig) -> None:
    """Fail before anything runs: the space, the model and the data must load (ValueError or
    :class:`odeattn.data.DatasetFileError` naming the fix)."""
    study = bench_study(bench_config(cfg))
    resolve_space(study)
    data_for(study)


def _tpe(kind: str, seed: int) -> optuna.Study:
    sampler = optuna.samplers.TPESampler(seed=seed)
    if kind == "multi":  # (accuracy ↑, log10 params ↓)
        return optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    return optuna.create_study(direction="maximize", sampler=sampler)


def _run_arm(cfg: EffConfig, arm: str, seed: int, kind: str) -> list[dict[str, float]]:
    study_cfg = bench_study(bench_config(cfg))
    space = resolve_space(study_cfg)
    tpe = _tpe(kind, seed)
    screen = Screen(cfg.keep_fraction, direction="maximize", warmup=cfg.warmup)
    score, history, events = _scorer(arm, study_cfg, space, seed), [], []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < cfg.seconds:
        trial = tpe.ask()
        params = sample(trial, space)
        if arm != "none":
            s = score(params)
            kept = screen.decide(s, history).kept
            history.append(s)
            if not kept:
                tpe.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
        out = run_trial(study_cfg, params, space=space, seed=seed * 1000 + trial.number)
        acc, cost = out["val_accuracy"], math.log10(out["params"])
        tpe.tell(trial, acc if kind == "single" else [acc, cost])
        t = time.perf_counter() - t0
        events.append({"t": t, "acc": acc, "params": out["params"], "arch": params})
    return events


def _job(cfg: EffConfig, kind: str, arm: str, seed: int) -> None:
    path = _path(cfg, kind, arm, seed)
    tmp = path.with_suffix(".part")
    events = _run_arm(cfg, arm, seed, kind)
    tmp.write_text(json.dumps({"provenance": provenance(), "events": events}))
    tmp.replace(path)  # a run is stored whole or not at all


def _path(cfg: EffConfig, kind: str, arm: str, seed: int) -> Path:
    tag = f"T{cfg.seconds:g}_E{cfg.epochs}_k{cfg.keep_fraction:g}_w{cfg.warmup}_j{cfg.jobs}"
    return Path(cfg.out) / f"{kind}_{arm}_seed{seed}_{tag}.json"


def run_efficiency(cfg: EffConfig, tick=lambda: None) -> dict[str, dict[str, list[list[dict]]]]:
    """Run (or resume) every (study, arm, seed); ``{study: {arm: [events of seed 0, …]}}``."""
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    # interleaved by seed, then study, then arm: a shared machine's load hits every arm alike
    jobs = [(k, a, s) for s in range(cfg.seeds) for k in cfg.studies for a in cfg.arms]
    todo = [(cfg, *j) for j in jobs if not _path(cfg, *j).is_file()]
    for _ in run_jobs(_job, todo, cfg.jobs):
        tick()
    return {
        k: {a: [_read(cfg, k, a, s)["events"] for s in range(cfg.seeds)] for a in cfg.arms}
        for k in cfg.studies
    }


def _read(cfg: EffConfig, kind: str, arm: str, seed: int) -> dict[str, Any]:
    """A stored run: ``{"provenance", "events"}`` (a bare event list before issue 21)."""
    data = json.loads(_path(cfg, kind, arm, seed).read_text())
    return data if isinstance(data, dict) else {"provenance": None, "events": data}


def run_provenance(cfg: EffConfig) -> list[dict[str, Any]]:
    """The distinct provenance records of the stored runs (date and command left out)."""
    seen: list[dict[str, Any]] = []
    for k in cfg.studies:
        for a in cfg.arms:
            for s in range(cfg.seeds):
                p = stable({"provenance": _read(cfg, k, a, s)["provenance"] or {}})["provenance"]
                if p not in seen:
                    seen.append(p)
    return seen


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by (acc ↑, cost ↓) points inside the reference box (acc ≥ ref0, cost ≤ ref1)."""
    pts = sorted((c, a) for a, c in points if a > ref[0] and c < ref[1])
    area, best = 0.0, ref[0]
    for i, (c, a) in enumerate(pts):
        best = max(best, a)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else ref[1]
        area += (best - ref[0]) * (nxt - c)
    return area


def curves(events: list[list[dict]], seconds: float, ref_cost: float, n: int = 60) -> dict:
    """Best-so-far accuracy and hypervolume on a time grid, one row per seed (NaN before any)."""
    grid = np.linspace(0, seconds, n)
    best = np.full((len(events), n), math.nan)
    hv = np.zeros((len(events), n))
    for i, ev in enumerate(events):
        for j, t in enumerate(grid):
            seen = [e for e in ev if e["t"] <= t and math.isfinite(e["acc"])]
            if seen:
                best[i, j] = max(e["acc"] for e in seen)
                pts = [(e["acc"], math.log10(e["params"])) for e in seen]
                hv[i, j] = hypervolume(pts, (0.0, ref_cost))
    return {"t": grid, "best": best, "hv": hv}
