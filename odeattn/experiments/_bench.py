"""The proxy benchmark: sample N architectures, train each S times, score every proxy, resume.

Zero-cost-proxy studies (Abdelfattah et al., ICLR 2021; NAS-Bench-Suite-Zero, NeurIPS 2022) judge a
proxy by the rank correlation of its score at initialisation with the trained accuracy over a
sample of a search space. The sample is the first N draws of a seeded random sampler
(:func:`draws`), the same on every run; each architecture is trained S times (``jobs`` at once,
one torch thread each) and stored as one complete Optuna trial (value = mean final validation
accuracy over the S training seeds) whose user attributes hold each seed's accuracy
(``acc@seed<k>``), every proxy (``proxy.<name>``), its draw and its provenance, so an interrupted
run resumes where it stopped (finished architectures are never retrained) and
``optuna-dashboard`` shows the study.

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
from odeattn.experiments._pool import run_jobs
from odeattn.experiments._provenance import provenance, stable
from odeattn.proxies import PROXIES
from odeattn.search import Space, resolve_space, run_trial, sample
from odeattn.search.trial import build
from odeattn.study import StudyConfig, data_for, input_batch

__all__ = [
    "BenchConfig",
    "bench_rows",
    "bench_study",
    "check_space",
    "draws",
    "evaluate",
    "open_study",
    "proxy_names",
    "run_benchmark",
    "trial_provenance",
]

STUDY_NAME = "proxy_benchmark"
EXTRA = ("tns@init", "tns@1", "flops")  # proxies measured by run_trial, beside PROXIES
FORMAT = 2  # 2: trials are the seeded draws 0..n-1 (user attr "draw"), stored whole


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


def draws(cfg: BenchConfig, space: Space) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The first ``cfg.n`` architectures of the benchmark: (params, distributions) of each draw.

    Random sampling (Optuna's ``RandomSampler(seed=cfg.sampler_seed)``) of a fresh in-memory
    study: draw k is the same for any n > k, on any machine, however often the run resumed.
    """
    sampler = optuna.samplers.RandomSampler(seed=cfg.sampler_seed)
    scratch = optuna.create_study(direction="maximize", sampler=sampler)
    out = []
    for _ in range(cfg.n):
        trial = scratch.ask()
        params = sample(trial, space)
        out.append((params, dict(trial.distributions)))
    return out


def evaluate(cfg: BenchConfig, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Train one architecture ``cfg.seeds`` times and score it: (mean accuracy, user attrs)."""
    study = bench_study(cfg)
    space = resolve_space(study)
    zero_cost = _zero_cost(study, space, params, cfg.batch)
    attrs: dict[str, Any] = {f"proxy.{k}": v for k, v in zero_cost.items()}
    accs = []
    for s in range(cfg.seeds):
        out = run_trial(study, params, space=space, seed=s)
        accs.append(out["val_accuracy"])
        attrs[f"acc@seed{s}"] = out["val_accuracy"]
        if s == 0:
            attrs |= {f"proxy.{k}": out[k] for k in EXTRA}
            attrs["tns_end"] = out["tns"]
    attrs = {k: (v if math.isfinite(v) else None) for k, v in attrs.items()}
    return sum(accs) / len(accs), attrs | {"provenance": provenance()}


def open_study(cfg: BenchConfig) -> optuna.Study:
    """The benchmark's study in ``OUT/benchmark.db``; other settings than the stored ones fail."""
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{Path(cfg.out).resolve() / 'benchmark.db'}"
    study = optuna.create_study(
        storage=url, study_name=STUDY_NAME, direction="maximize", load_if_exists=True
    )
    key = {k: v for k, v in asdict(cfg).items() if k not in ("n", "out")}
    key |= {"space": str(Path(cfg.space).resolve()), "format": FORMAT}
    stored = study.user_attrs.get("config")
    if stored is None:
        study.set_user_attr("config", key)
    elif any(stored.get(k) != key.get(k) for k in ("format", *stored)):  # newer keys: not compared
        diff = next(k for k in ("format", *stored) if stored.get(k) != key.get(k))
        raise must(
            diff,
            f"match the benchmark stored in {cfg.out} ({diff}={stored.get(diff)!r}); "
            "use another --out for other settings",
            key.get(diff),
        )
    return study


def run_benchmark(
    cfg: BenchConfig, tick: Callable[[], None] = lambda: None, jobs: int = 1
) -> list[dict]:
    """Train until the first ``cfg.n`` draws are stored (resuming, ``jobs`` architectures at a
    time, one torch thread each), then return :func:`bench_rows` (a draw whose training diverged
    is stored as FAIL and has no row)."""
    study = open_study(cfg)
    every = draws(cfg, resolve_space(bench_study(cfg)))
    stored = study.get_trials(states=(TrialState.COMPLETE, TrialState.FAIL))
    done = {t.user_attrs.get("draw") for t in stored}  # a FAIL with a draw: diverged, stored
    todo = [k for k in range(cfg.n) if k not in done]
    for _ in range((cfg.n - len(todo)) * cfg.seeds):
        tick()
    results = run_jobs(evaluate, [(cfg, every[k][0]) for k in todo], jobs)
    for k, (value, attrs) in zip(todo, results):
        params, dists = every[k]
        ok = math.isfinite(value)  # a diverged draw (NaN accuracy) is stored as FAIL: no row
        trial = optuna.trial.create_trial(
            state=TrialState.COMPLETE if ok else TrialState.FAIL,
            value=value if ok else None,
            params=params,
            distributions=dists,
            user_attrs=attrs | {"draw": k},
        )
        study.add_trial(trial)  # stored whole: an interrupt leaves nothing half-done
        for _ in range(cfg.seeds):
            tick()
    return bench_rows(study, cfg.seeds, cfg.n)


def bench_rows(study: optuna.Study, seeds: int, n: int | None = None) -> list[dict[str, Any]]:
    """One row per complete draw (the first ``n``), in draw order: number (the draw), arch,
    acc@seed<k>, mean_accuracy, proxies, tns_end."""
    nan = math.nan
    rows = []
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    for t in sorted(trials, key=lambda t: t.user_attrs.get("draw", t.number)):
        ua = t.user_attrs
        draw = ua.get("draw", t.number)
        if n is not None and draw >= n:
            continue
        row: dict[str, Any] = {"number": draw, "arch": dict(t.params)}
        row |= {f"acc@seed{s}": _num(ua.get(f"acc@seed{s}", nan)) for s in range(seeds)}
        row["mean_accuracy"] = float(t.value) if t.value is not None else nan
        row |= {k: _num(ua.get(f"proxy.{k}", nan)) for k in proxy_names()}
        row["tns_end"] = _num(ua.get("tns_end", nan))
        rows.append(row)
    return rows


def trial_provenance(study: optuna.Study) -> list[dict[str, Any]]:
    """The distinct provenance records of the stored trials (date and command left out)."""
    seen: list[dict[str, Any]] = []
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        p = stable({"provenance": t.user_attrs.get("provenance") or {}})["provenance"]
        if p not in seen:
            seen.append(p)
    return seen


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)
