"""One trial: build the sampled network, screen it, train it, measure every objective.

``run_trial(study, params, report, *, trial=None) -> dict[str, float]`` is the seam both backends
share. ``params`` is the flat dict :func:`odeattn.search.sample` produced (what Ray hands its
trainable). Training runs through ``odeattn.train.fit`` with the single seam
``report(epoch, metrics) -> should_stop``; ``metrics`` carries ``val_accuracy``, ``val_loss``,
``train_loss`` and, at epochs where a stiffness objective asks for it, ``tns@<k>`` etc.

Returned keys: every objective name (``tns@init``, ``tns`` = at the end, ``val_accuracy``, …),
``params``, ``flops``, ``attention_blocks``, ``epochs_run``, ``screened_out`` (1.0 when the TNS
screen rejected the trial before training; ``val_*`` are then NaN), ``tns_se`` and
``eval_samples`` (TNS on the fixed evaluation set, the first ``measure.samples`` validation
images, and its SE across batches), ``seed`` and ``threads`` (a result is reproducible for a given
seed and thread count). Anything failing before training (data, model, evaluation set) raises
:class:`SetupError`: the study is wrong, the search stops. With an Optuna ``trial`` the
function also writes user attributes and artifacts (see ``_dashboard.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

from odeattn.models import create_model
from odeattn.proxies import PROXIES, count_params
from odeattn.search.trial import _metrics
from odeattn.search.trial._dashboard import record_trial
from odeattn.study import (
    STIFFNESS_METRICS,
    SetupError,
    Space,
    StudyConfig,
    data_for,
    decode,
    input_batch,
    model_kwargs,
    plan_for,
    resolve_space,
)
from odeattn.train import fit

__all__ = ["ConfigurationRefused", "Report", "Screen", "build", "run_trial"]

Report = Callable[[int, dict[str, float]], bool]
#: screen(score) -> keep?  Decides on the TNS-proxy score before (most of) the training.
Screen = Callable[[float], bool]

_STATIC = ("params", "flops", "latency_ms", "attention_blocks")
_EPOCH_KEYS = ("val_accuracy", "val_loss", "train_loss", "train_accuracy")


def _norm_metrics(m: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in (m or {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _stiff_points(study: StudyConfig) -> set[str | int]:
    pts: set[str | int] = {"end", "init"}  # init and end summaries are always recorded (attrs)
    pts |= {o.at for o in study.objectives if o.metric in STIFFNESS_METRICS}
    p = study.pruning
    if p is not None and p.rule == "dominated" and study.objectives_need_stiffness:
        pts |= set(range(1, plan_for(study).epochs + 1))  # the epoch-e vector needs TNS each epoch
    if study.screen is not None:
        pts.add(study.screen.at)
    return pts


def _stiff(
    model: torch.nn.Module, x: torch.Tensor, study: StudyConfig, bn_mode: str = "eval"
) -> dict[str, Any]:
    m = study.measure
    return _metrics.stiffness(
        model, x, kind=m.nsi, p_hat_m=m.p_hat_m, bn_mode=bn_mode, batch=m.batch
    )


def _flat(summary: dict[str, Any], at: str | int) -> dict[str, float]:
    suffix = "" if at == "end" else f"@{at}"
    return {f"{k}{suffix}": summary[k] for k in (*STIFFNESS_METRICS, "tns_se")}


def build(
    study: StudyConfig, space: Space, params: dict[str, Any], data: Any = None
) -> tuple[Any, dict[str, Any]]:
    """(model, decoded train overrides) for ``params``."""

    decoded = decode(space, params)
    num_classes = getattr(data, "num_classes", None) if data is not None else None
    kw = model_kwargs(study, decoded, num_classes)
    return create_model(study.model.name, **kw), decoded.train


class _Epochs:
    """The ``report`` handed to ``fit``: per-epoch metrics, stiffness at asked epochs, the screen."""

    def __init__(
        self,
        study: StudyConfig,
        model: torch.nn.Module,
        x: torch.Tensor,
        out: dict[str, float],
        summaries: dict[str, Any],
        report: Report | None,
        screen: Screen | None,
    ) -> None:
        self.study, self.model, self.x, self.out, self.summaries = study, model, x, out, summaries
        self.report, self.screen, self.points = report, screen, _stiff_points(study)
        self.epochs_run, self.keep, self.history = 0, True, {}

    def screen_now(self, at: str | int, metrics: dict[str, float]) -> None:
        sc = self.study.screen
        if sc is None or sc.at != at:
            return
        key = f"{sc.metric}@{at}" if sc.metric in STIFFNESS_METRICS else sc.metric
        self.out["screen_score"] = metrics.get(key, math.nan)
        self.keep = self.screen(self.out["screen_score"]) if self.screen is not None else True

    def __call__(self, epoch: int, m: dict[str, Any]) -> bool:
        self.epochs_run = epoch
        metrics = {k: v for k, v in _norm_metrics(m).items() if k in _EPOCH_KEYS}
        if epoch in self.points:
            self.summaries[str(epoch)] = _stiff(self.model, self.x, self.study)
            metrics |= _flat(self.summaries[str(epoch)], epoch)
        metrics |= {k: self.out[k] for k in _STATIC if k in self.out}  # for the dominated rule
        for k, v in metrics.items():
            self.history.setdefault(k, []).append(v)
        stop = bool(self.report(epoch, metrics)) if self.report is not None else False
        self.screen_now(epoch, metrics)
        return stop or not self.keep


def _seeded_build(
    study: StudyConfig, space: Space, params: dict[str, Any], data: Any, seed: int | None
) -> Any:
    if seed is not None:
        torch.manual_seed(seed)
    return build(study, space, params, data)


_STATIC_KEYS = ("params",)  # measured for every trial by _static


def _static(
    study: StudyConfig, model: torch.nn.Module, arch: dict[str, Any], x: torch.Tensor
) -> dict[str, float]:
    out = {
        "params": float(count_params(model, trainable_only=False)),
        "attention_blocks": float(_metrics.attention_blocks(arch)),
    }
    latency = any(o.metric == "latency_ms" for o in study.objectives)
    return out | _metrics.cost(
        model, tuple(x.shape[1:]), latency=latency, latency_batch=study.measure.latency_batch
    )


def _zero_cost(
    study: StudyConfig, model: torch.nn.Module, data: Any, x: torch.Tensor
) -> dict[str, float]:
    """The screen's zero-cost proxy (``screen.metric`` in PROXIES) on the untrained network,
    scored on the first 64 images of the evaluation set with their labels."""
    sc = study.screen
    if sc is None or sc.metric not in PROXIES or sc.metric in _STATIC_KEYS:
        return {}
    xb = x[:64]
    yb = data.val.y[: len(xb)].to(xb.device)
    return {sc.metric: float(PROXIES[sc.metric](model, xb, yb))}


class ConfigurationRefused(RuntimeError):
    """This sampled configuration cannot be built or measured (the model refuses it, out of
    memory in the FLOPs pass, …): the trial fails and counts, the search goes on (issue 18)."""


def _setup(
    study: StudyConfig, space: Space, params: dict[str, Any], seed: int | None
) -> tuple[Any, Any, dict[str, Any], torch.Tensor, dict[str, float]]:
    """Data and evaluation set (a failure is the study's: :class:`SetupError`, the search stops),
    then this configuration's model and static measurements (a failure is this trial's:
    :class:`ConfigurationRefused`)."""
    try:
        data = data_for(study)
        x = input_batch(data, study.measure.samples)  # the fixed evaluation set
    except Exception as e:
        raise SetupError(
            f"trial set-up failed before training ({_first(e)}); "
            "fix the study file or the data, then re-run"
        ) from e
    try:
        model, train_over = _seeded_build(study, space, params, data, seed)
        return data, model, train_over, x, _static(study, model, model.architecture(), x)
    except Exception as e:  # this configuration only: the others may build
        raise ConfigurationRefused(f"this configuration cannot be built ({_first(e)})") from e


def _first(e: BaseException) -> str:
    first = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {first[:300]}"


def run_trial(
    study: StudyConfig,
    params: dict[str, Any],
    report: Report | None = None,
    *,
    trial: Any = None,
    space: Space | None = None,
    screen: Screen | None = None,
    seed: int | None = None,
) -> dict[str, float]:
    """Train and measure one sampled architecture; see the module docstring for the keys."""

    t0 = time.perf_counter()
    space = space or resolve_space(study)
    if seed is None:
        seed = plan_for(study).seed(trial.number if trial is not None else 0)
    data, model, train_over, x, out = _setup(study, space, params, seed)
    arch = model.architecture()
    summaries: dict[str, Any] = {"init": _stiff(model, x, study, bn_mode="train")}
    out |= _flat(summaries["init"], "init") | _zero_cost(study, model, data, x)
    epochs = _Epochs(study, model, x, out, summaries, report, screen)
    epochs.screen_now("init", out)
    final = (
        fit(model, data, plan_for(study).train_config(train_over, seed), report=epochs)
        if epochs.keep
        else {}
    )
    fm = _norm_metrics(final or {})
    for k in ("val_accuracy", "val_loss", "train_loss"):
        out[k] = fm.get(k, epochs.history.get(k, [math.nan])[-1]) if epochs.keep else math.nan
    summaries["end"] = _stiff(model, x, study)
    out |= _flat(summaries["end"], "end")
    out |= {k: v[-1] for k, v in epochs.history.items() if "@" in k}
    out |= {
        "epochs_run": float(epochs.epochs_run),
        "screened_out": float(not epochs.keep),
        "seconds": time.perf_counter() - t0,
        "seed": float(seed) if seed is not None else math.nan,
        "threads": float(torch.get_num_threads()),
        "eval_samples": float(len(x)),
    }
    if trial is not None:
        record_trial(study, trial, model, arch, out, summaries, epochs.history, train_over)
    return out
