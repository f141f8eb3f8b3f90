"""Plain, fast supervised training: ``fit(model, data, config, report) -> metrics``.

One loop a reader follows top to bottom: SGD (momentum, optional Nesterov, weight decay) with a
per-iteration learning-rate factor (linear warm-up, then constant / step / multistep / cosine),
cross-entropy with optional label smoothing, optional global-norm gradient clipping, bf16
autocast and channels_last on CUDA, optional ``torch.compile``. Data stays on the device as
uint8 (:mod:`odeattn.data`); each batch is cropped / flipped / normalised there.

The single seam to searches is ``report(epoch, metrics) -> should_stop``, called after every
epoch with ``epoch`` = epochs completed (1-based). Non-finite loss or weights raise
:class:`Diverged` carrying the epoch; any other error propagates unchanged.

Recipes (:data:`RECIPES`) follow the papers' code: ResNet-164 on CIFAR (He et al. 2016; bearpaw
``cifar.py``), DIANet (Huang et al. 2020), RKCNN (Zhu et al. 2023), ODE-Net on MNIST
(Chen et al. 2018, torchdiffeq ``odenet_mnist.py``), and a short one for embedded digits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from odeattn.data import BatchTransform, Dataset, Split
from odeattn.models import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from odeattn.train._epoch import Diverged, check_finite, steps_per_epoch, train_epoch
from odeattn.train._eval import evaluate, evaluate_split
from odeattn.train._recipes import RECIPES, TrainConfig, lr_factor

__all__ = [
    "RECIPES",
    "Diverged",
    "TrainConfig",
    "evaluate",
    "fit",
    "load_checkpoint",
    "lr_factor",
    "save_checkpoint",
]

Report = Callable[[int, dict[str, float]], bool]


@contextlib.contextmanager
def _global_mode(cfg: TrainConfig, device: torch.device):
    """Deterministic algorithms / cudnn autotune for the duration of ``fit``, then restored."""
    cudnn = torch.backends.cudnn
    prev = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn.benchmark,
        cudnn.deterministic,
    )
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    cudnn.deterministic = cfg.deterministic or prev[3]
    cudnn.benchmark = device.type == "cuda" and not cfg.deterministic
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        cudnn.benchmark, cudnn.deterministic = prev[2], prev[3]


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class _Run:
    """What one ``fit`` call trains with: the model (``net`` is it, compiled when asked), the
    optimiser and per-iteration schedule, the on-device transform and the data-order generator."""

    model: nn.Module
    net: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    tf: BatchTransform
    gen: torch.Generator
    data: Dataset
    cfg: TrainConfig
    amp: bool

    def evaluate(self, split: Split) -> dict[str, float]:
        topk = self.data.num_classes > 10
        return evaluate_split(self.net, split, self.tf, self.cfg.eval_batch_size, self.amp, topk)


def _setup(model: nn.Module, data: Dataset, cfg: TrainConfig, device: torch.device) -> _Run:
    amp = cfg.amp if cfg.amp is not None else device.type == "cuda"
    cl = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if cl else torch.preserve_format)
    steps = steps_per_epoch(len(data.train), cfg.batch_size)
    if steps == 0:
        raise ValueError(f"the training split has {len(data.train)} image(s); need at least 2")
    opt = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
        fused=True if device.type == "cuda" else None,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(cfg, steps, it))
    tf = BatchTransform(
        data.mean, data.std, crop_pad=data.crop_pad, flip=data.flip, device=device, channels_last=cl
    )
    net = torch.compile(model) if cfg.compile else model
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    return _Run(model, net, opt, sched, tf, gen, data, cfg, amp)


def fit(
    model: nn.Module,
    data: Dataset,
    config: TrainConfig | None = None,
    report: Report | None = None,
    *,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: str | os.PathLike | None = None,
) -> dict[str, float]:
    """Train ``model`` on ``data.train``; validate on ``data.val`` after every epoch. Seeds
    ``torch.manual_seed(config.seed)``; data order and augmentation have their own generator.

    Args:
        config: a :class:`TrainConfig` (default: ``TrainConfig()``); see :data:`RECIPES`.
        report: ``report(epoch, metrics) -> should_stop`` after each epoch (epoch 1-based).
        checkpoint: file written atomically every ``checkpoint_every`` epochs, at the end and when
            ``report`` stops the run.
        resume: a checkpoint to continue from (model, optimiser, scheduler, RNG, history).

    Returns:
        The last epoch's metrics (``train_loss``, ``train_accuracy``, ``val_loss``,
        ``val_accuracy`` [``val_top5`` when > 10 classes], ``lr``, ``images_per_s``,
        ``epoch_time_s``) plus ``best_val_accuracy``, ``best_epoch``, ``epochs_run``,
        ``stopped_early`` and ``test_*`` when ``eval_test``; accuracies are fractions in [0, 1].

    Raises:
        Diverged: the loss or the weights became non-finite.
    """
    cfg = config if config is not None else TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(
            f"`config` must be a TrainConfig, but got {type(cfg).__name__}; see RECIPES"
        )
    device = _resolve_device(cfg.device)
    with _global_mode(cfg, device):
        torch.manual_seed(cfg.seed)
        run = _setup(model, data.to(device), cfg, device)
        start, history = _resume(run, resume)
        stopped = False
        for epoch in range(start + 1, cfg.epochs + 1):
            history.append(_epoch(run, epoch))
            stopped = bool(report(epoch, dict(history[-1]))) if report is not None else False
            last = stopped or epoch == cfg.epochs
            if checkpoint is not None and (last or epoch % checkpoint_every == 0):
                _save(run, checkpoint, history)
            if stopped:
                break
        return _final(run, history, stopped)


def _resume(run: _Run, path: str | os.PathLike | None) -> tuple[int, list[dict[str, float]]]:
    """(epochs done, history) of checkpoint ``path`` (model, optimiser, schedule and RNG
    restored), or (0, []) without one. Histories written before the metric rename get today's
    names (``*_acc`` → ``*_accuracy``), so old checkpoints resume with their best epoch intact."""
    if path is None:
        return 0, []
    ck = load_checkpoint(path)
    run.model.load_state_dict(ck["model"])
    run.opt.load_state_dict(ck["optimizer"])
    run.sched.load_state_dict(ck["scheduler"])
    set_rng_state(ck["rng"], run.gen)
    history = [
        {
            (k.removesuffix("_acc") + "_accuracy" if k.endswith("_acc") else k): v
            for k, v in h.items()
        }
        for h in ck["history"]
    ]
    return int(ck["epoch"]), history


def _epoch(run: _Run, epoch: int) -> dict[str, float]:
    """Train one epoch, then validate: the metrics handed to ``report``."""
    t0 = time.perf_counter()
    loss, acc, seen = train_epoch(
        run.net, run.opt, run.sched, run.tf, run.data.train, run.cfg, run.gen, run.amp
    )
    t_train = time.perf_counter() - t0
    check_finite(run.model, loss, epoch)
    m = {
        "epoch": epoch,
        "train_loss": loss,
        "train_accuracy": acc,
        "lr": run.opt.param_groups[0]["lr"],
        "images_per_s": seen / t_train,
    }
    if len(run.data.val):
        m |= {f"val_{k}": x for k, x in run.evaluate(run.data.val).items()}
    m["epoch_time_s"] = time.perf_counter() - t0
    return m


def _save(run: _Run, path: str | os.PathLike, history: list[dict[str, float]]) -> None:
    save_checkpoint(
        path,
        run.model,
        optimizer=run.opt,
        scheduler=run.sched,
        epoch=history[-1]["epoch"],
        config=dataclasses.asdict(run.cfg),
        data=run.data.describe(),
        rng=rng_state(run.gen),
        history=history,
    )


def _final(run: _Run, history: list[dict[str, float]], stopped: bool) -> dict[str, float]:
    """The last epoch's metrics, the best validation epoch, and the test split when asked."""
    out = dict(history[-1]) if history else {}
    vals = [(h["val_accuracy"], h["epoch"]) for h in history if "val_accuracy" in h]
    if vals:
        best = max(vals, key=lambda t: (t[0], -t[1]))
        out |= {"best_val_accuracy": best[0], "best_epoch": best[1]}
    out |= {"epochs_run": len(history), "stopped_early": stopped}
    if run.cfg.eval_test and len(run.data.test):
        out |= {f"test_{k}": x for k, x in run.evaluate(run.data.test).items()}
    return out
