"""The proxy benchmark: sample N architectures, train each S times, score every proxy, resume.

Zero-cost-proxy studies (Abdelfattah et al., ICLR 2021; NAS-Bench-Suite-Zero, NeurIPS 2022) judge a
proxy by the rank correlation of its score at initialisation with the trained accuracy over a
sample of a search space. Here every architecture is one Optuna trial (value = mean final
validation accuracy over the S training seeds) whose user attributes hold each seed's accuracy
(``acc@seed<k>``) and every proxy (``proxy.<name>``), so an interrupted run resumes where it
stopped (finished architectures are never retrained) and ``optuna-dashboard`` shows the study.

Proxies: every entry of :data:`odeattn.proxies.PROXIES` on one validation batch of the untrained
network (built with the first seed, the same initialisation its first training run starts from),
plus ``tns@init`` (StepNet TNS at initialisation), ``tns@1`` (after one epoch of training), ``flops``.
``tns_end`` (TNS of the trained network, StepNet Fig. 7) is recorded beside them; it is not
zero-cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from odeattn._errors import must
from odeattn.proxies import PROXIES
from odeattn.search import Space, resolve_space, run_trial, sample
from odeattn.search.trial import build
from odeattn.study import data_for, input_batch
from odeattn.study.config import StudyConfig

__all__ = [
    "BenchConfig",
    "bench_rows",
    "bench_study",
    "check_space",
    "open_study",
    "proxy_names",
    "run_benchmark",
]

STUDY_NAME = "proxy_benchmark"
EXTRA = ("tns@init", "tns@1", "flops")  # proxies measured by run_trial, beside PROXIES


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark: the space file, N architectures, E epochs, S seeds, data, output folder."""

    space: str
    n: int
    epochs: int
    seeds: int
    data: str = "digits"
    out: str = "runs/proxy_benchmark"
    model: str = "digits_resnet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    batch: int = 32  # proxy batch; jacob_cov needs batch < input values (64 for digits)
    sampler_seed: int = 0
    val_fraction: float = 0.2
    recipe: str = "digits"
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("n", "epochs"):
            if getattr(self, name) < 1:
                raise must(name, "be >= 1", getattr(self, name))
        if self.seeds < 2:
            raise must("seeds", "be >= 2 (the noise ceiling compares two seeds)", self.seeds)
        if not Path(self.space).is_file():
            raise must("space", "be an existing search-space YAML file", self.space)


def proxy_names() -> list[str]:
    """The proxy columns, in report order."""
    return [*EXTRA, *PROXIES]


def bench_study(cfg: BenchConfig) -> StudyConfig:
    """The study a benchmark trains its architectures with (accuracy; TNS at init, 1, end)."""
    return StudyConfig.model_validate(
        dict(
            name=STUDY_NAME,
            search_space=str(Path(cfg.space).resolve()),
            data=dict(name=cfg.data, val_fraction=cfg.val_fraction),
            model=dict(name=cfg.model, kwargs=dict(cfg.model_kwargs)),
            train=dict(recipe=cfg.recipe, epochs=cfg.epochs, device=cfg.device),
            objectives=[
                dict(metric="val_accuracy", direction="maximize"),
                dict(metric="tns", at=1, direction="maximize"),
            ],
            budget=dict(n_trials=cfg.n),
            file=str(Path(cfg.space).resolve()),
        )
    )


def _zero_cost(study: StudyConfig, space: Space, params: dict[str, Any], batch: int) -> dict:
    """Every PROXIES score of the untrained network as the first seed (0) initialises it."""
    data = data_for(study)
    x = input_batch(data, batch)
    y = data.val.y[:batch].long()
    torch.manual_seed(0)
    model, _ = build(study, space, params, data)
    return {name: float(proxy(model, x, y)) for name, proxy in PROXIES.items()}


def check_space(study: StudyConfig, cfg: BenchConfig, k: int = 3) -> None:
    """Build the first ``k`` architectures the benchmark samples (an in-memory study: nothing is
    trained or written), so a space the model cannot build fails before any work, as one line."""
    space, data = resolve_space(study), data_for(study)
    probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=cfg.sampler_seed))
    for _ in range(min(k, cfg.n)):
        trial = probe.ask()
        params = sample(trial, space)
        try:
            build(study, space, params, data)
        except (ValueError, TypeError) as e:
            kw = "".join(f" --model-kw {key}={v}" for key, v in cfg.model_kwargs.items())
            raise ValueError(
                f"--space {cfg.space} samples architectures that --model {cfg.model}{kw} cannot "
                f"build ({e}); change the space, or give the model what it needs with "
                "--model-kw KEY=VALUE (e.g. --model-kw adaptor=se)"
            ) from e
        probe.tell(trial, 0.0)


def _evaluate(study: StudyConfig, cfg: BenchConfig, trial: optuna.Trial, tick: Callable) -> float:
    space = resolve_space(study)
    params = sample(trial, space)
    zero_cost = _zero_cost(study, space, params, cfg.batch)
    attrs: dict[str, float] = {f"proxy.{k}": v for k, v in zero_cost.items()}
    accs = []
    for s in range(cfg.seeds):
        out = run_trial(study, params, space=space, seed=s)
        accs.append(out["val_accuracy"])
        attrs[f"acc@seed{s}"] = out["val_accuracy"]
        if s == 0:
            attrs |= {f"proxy.{k}": out[k] for k in EXTRA}
            attrs["tns_end"] = out["tns"]
        tick()
    for k, v in attrs.items():
        trial.set_user_attr(k, v if math.isfinite(v) else None)
    return sum(accs) / len(accs)


def open_study(cfg: BenchConfig) -> optuna.Study:
    """The benchmark's study in ``OUT/benchmark.db``; other settings than the stored ones fail."""
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{Path(cfg.out).resolve() / 'benchmark.db'}"
    study = optuna.create_study(
        storage=url, study_name=STUDY_NAME, direction="maximize", load_if_exists=True
    )
    key = {k: v for k, v in asdict(cfg).items() if k not in ("n", "out")}
    key["space"] = str(Path(cfg.space).resolve())
    stored = study.user_attrs.get("config")
    if stored is None:
        study.set_user_attr("config", key)
    elif any(stored[k] != key.get(k) for k in stored):  # keys a newer version added: not compared
        diff = next(k for k in stored if stored[k] != key.get(k))
        raise must(
            diff,
            f"match the benchmark stored in {cfg.out} ({diff}={stored[diff]!r}); "
            "use another --out for other settings",
            key[diff],
        )
    for t in study.get_trials(states=(TrialState.RUNNING,)):  # left by an interrupted run
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params)
    return study


def run_benchmark(cfg: BenchConfig, tick: Callable[[], None] = lambda: None) -> list[dict]:
    """Train until ``cfg.n`` architectures are complete (resuming), then return :func:`bench_rows`."""
    study = open_study(cfg)
    bstudy = bench_study(cfg)
    done = len(study.get_trials(states=(TrialState.COMPLETE,)))
    study.sampler = optuna.samplers.RandomSampler(seed=cfg.sampler_seed + done)
    for _ in range(done * cfg.seeds):
        tick()
    while len(study.get_trials(states=(TrialState.COMPLETE,))) < cfg.n:
        trial = study.ask()
        study.tell(trial, _evaluate(bstudy, cfg, trial, tick))
    return bench_rows(study, cfg.seeds)


def bench_rows(study: optuna.Study, seeds: int) -> list[dict[str, Any]]:
    """One row per complete architecture: number, params, acc@seed<k>, mean_accuracy, proxies."""
    nan = math.nan
    rows = []
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        ua = t.user_attrs
        row: dict[str, Any] = {"number": t.number, "arch": dict(t.params)}
        row |= {f"acc@seed{s}": _num(ua.get(f"acc@seed{s}", nan)) for s in range(seeds)}
        row["mean_accuracy"] = float(t.value) if t.value is not None else nan
        row |= {k: _num(ua.get(f"proxy.{k}", nan)) for k in proxy_names()}
        row["tns_end"] = _num(ua.get("tns_end", nan))
        rows.append(row)
    return rows


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)
