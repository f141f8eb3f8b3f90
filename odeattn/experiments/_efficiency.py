"""Search efficiency (issue 14 §3): does screening by a proxy find better networks at equal time?

Each *arm* runs TPE (Bergstra et al. 2011; Optuna's ``TPESampler``) over one search space for the
same wall-clock budget T, once per sampler seed. Before training, a candidate is scored at
initialisation and passed through :class:`odeattn.proxies.Screen` (keep the best
``keep_fraction`` of those seen so far, the first ``warmup`` always): ``none`` trains every
candidate, ``tns`` screens by TNS at init (as ``studies/tns_proxy.yaml`` does), ``random`` by a
uniform random score (the control: the same training time saved, no information), and any other
name of :data:`odeattn.proxies.PROXIES` by that proxy. A rejected candidate is told to TPE as
PRUNED. Recorded per trained candidate: elapsed seconds, validation accuracy, parameters; the
curves are best-so-far accuracy and the 2-D hypervolume of (accuracy ↑, log10 params ↓) against
time, mean ± 95 % CI (Student t) over seeds. Each (arm, seed) run is stored as JSON when done,
so a re-run only runs what is missing.
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
from odeattn.proxies import PROXIES, Screen
from odeattn.search import Space, resolve_space, run_trial, sample
from odeattn.search._build import data_for, input_batch
from odeattn.search._metrics import stiffness
from odeattn.search._objective import build

__all__ = ["EffConfig", "curves", "hypervolume", "run_efficiency"]

BASE_ARMS = ("none", "tns", "random")


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

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.seeds < 2 or self.epochs < 1:
            raise must(
                "seconds, seeds, epochs",
                "be > 0, >= 2, >= 1",
                (self.seconds, self.seeds, self.epochs),
            )
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


def _run_arm(cfg: EffConfig, arm: str, seed: int) -> list[dict[str, float]]:
    bench = BenchConfig(
        space=cfg.space,
        n=1,
        epochs=cfg.epochs,
        seeds=2,
        data=cfg.data,
        model=cfg.model,
        recipe=cfg.recipe,
        device=cfg.device,
    )
    study_cfg = bench_study(bench)
    space = resolve_space(study_cfg)
    tpe = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
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
        tpe.tell(trial, out["val_accuracy"])
        events.append(
            {"t": time.perf_counter() - t0, "acc": out["val_accuracy"], "params": out["params"]}
        )
    return events


def run_efficiency(cfg: EffConfig, tick=lambda: None) -> dict[str, list[list[dict]]]:
    """Run (or resume) every (arm, seed); ``{arm: [events of seed 0, …]}``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, list[list[dict]]] = {arm: [] for arm in cfg.arms}
    for seed in range(cfg.seeds):  # arms interleaved: a shared machine's load hits them alike
        for arm in cfg.arms:
            tag = f"T{cfg.seconds:g}_E{cfg.epochs}_k{cfg.keep_fraction:g}_w{cfg.warmup}"
            f = out / f"{arm}_seed{seed}_{tag}.json"
            if not f.is_file():
                f.write_text(json.dumps(_run_arm(cfg, arm, seed)))
            result[arm].append(json.loads(f.read_text()))
            tick()
    return result


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
