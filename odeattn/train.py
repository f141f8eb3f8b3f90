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
import difflib
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from odeattn._augment import BatchTransform
from odeattn._checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from odeattn.data import Dataset, Split

__all__ = ["RECIPES", "Diverged", "TrainConfig", "evaluate", "fit", "load_checkpoint",
           "lr_factor", "save_checkpoint"]

Report = Callable[[int, dict[str, float]], bool]
SCHEDULES = ("constant", "step", "multistep", "cosine")


class Diverged(RuntimeError):
    """Training produced a non-finite loss or non-finite weights; ``.epoch`` says when."""

    def __init__(self, epoch: int, what: str) -> None:
        self.epoch, self.what = int(epoch), what
        super().__init__(f"training diverged in epoch {epoch}: {what}; lower `lr` or set `grad_clip`")

    def __reduce__(self):  # picklable across processes (Ray)
        return (Diverged, (self.epoch, self.what))


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``fit`` needs besides model and data. Epoch counts may be fractional for warm-up."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # constant | step | multistep | cosine
    milestones: tuple[int, ...] = ()  # multistep: epochs after which lr *= gamma
    step_size: int = 30  # step: lr *= gamma every step_size epochs
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up from lr/(steps) to lr, per iteration
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max global L2 norm of the gradient
    augment: bool = True  # the dataset's crop/flip (normalisation always applies)
    eval_batch_size: int = 1000
    device: str = "auto"  # auto = cuda when available
    amp: bool | None = None  # bf16 autocast; None = on for CUDA
    channels_last: bool | None = None  # None = on for CUDA
    compile: bool = False  # torch.compile the model
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms (warn-only), no cudnn autotune
    eval_test: bool = True  # evaluate the test split once, after training

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        _positive(self, "epochs", "batch_size", "eval_batch_size", "step_size")
        _nonnegative(self, "lr", "momentum", "weight_decay", "warmup_epochs", "gamma")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"`schedule` must be one of {SCHEDULES}, but got schedule={self.schedule!r}"
                             f"{_closest(self.schedule, SCHEDULES)}")
        if self.nesterov and self.momentum <= 0:
            raise ValueError("`nesterov=True` needs `momentum` > 0; set momentum=0.9 or nesterov=False")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1), but got {self.label_smoothing}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"`grad_clip` must be > 0 or None, but got grad_clip={self.grad_clip}")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"`milestones` must be increasing, but got {self.milestones}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], base: TrainConfig | None = None) -> TrainConfig:
        """``base`` (default: defaults) with ``values`` applied; unknown keys are a ValueError."""
        names = [f.name for f in dataclasses.fields(cls)]
        for k in values:
            if k not in names:
                raise ValueError(f"unknown training option {k!r}{_closest(k, names)}. Valid: {', '.join(names)}")
        return dataclasses.replace(base or cls(), **values)

    def with_epochs(self, epochs: int) -> TrainConfig:
        """The same recipe stretched to ``epochs``: milestones, step size and warm-up scale too."""
        r = epochs / self.epochs
        return dataclasses.replace(
            self, epochs=epochs, milestones=tuple(max(1, round(m * r)) for m in self.milestones),
            step_size=max(1, round(self.step_size * r)), warmup_epochs=self.warmup_epochs * r)


def _positive(cfg: TrainConfig, *names: str) -> None:
    for n in names:
        v = getattr(cfg, n)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"`{n}` must be a positive int, but got {n}={v!r}")


def _nonnegative(cfg: TrainConfig, *names: str) -> None:
    for n in names:
        v = getattr(cfg, n)
        if not isinstance(v, int | float) or not v >= 0 or math.isinf(v):
            raise ValueError(f"`{n}` must be a finite number >= 0, but got {n}={v!r}")


def _closest(name: str, valid) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


RECIPES: dict[str, TrainConfig] = {
    # Embedded default: small pre-act ResNet on 8x8 digits, seconds per epoch on a laptop CPU.
    "digits": TrainConfig(epochs=15, batch_size=64, lr=0.1, weight_decay=5e-4, schedule="cosine",
                          warmup_epochs=1.0),
    # He et al. 2016 ResNet-164 on CIFAR (bearpaw cifar.py, used by DIANet/IEBN/SEM/...).
    "resnet164_cifar": TrainConfig(epochs=164, batch_size=128, lr=0.1, weight_decay=1e-4,
                                   schedule="multistep", milestones=(81, 122)),
    # DIANet's DIA-ResNet-164 run: 180 epochs, x0.1 at 60 and 120.
    "dianet_cifar": TrainConfig(epochs=180, batch_size=128, lr=0.1, weight_decay=1e-4,
                                schedule="multistep", milestones=(60, 120)),
    # DIANet's WRN-52-4: 200 epochs, x0.2 at 80/120/160, wd 5e-4.
    "dianet_wrn_cifar": TrainConfig(epochs=200, batch_size=128, lr=0.1, weight_decay=5e-4,
                                    schedule="multistep", milestones=(80, 120, 160), gamma=0.2),
    # RKCNN train_cifar.py: batch 32, Nesterov, 300 epochs, x0.1 at 50 % and 75 %.
    "rkcnn_cifar": TrainConfig(epochs=300, batch_size=32, lr=0.1, nesterov=True, weight_decay=1e-4,
                               schedule="multistep", milestones=(150, 225)),
    # torchdiffeq odenet_mnist.py: lr 0.1 (batch 128), no weight decay, x0.1 at 60/100/140.
    "odenet_mnist": TrainConfig(epochs=160, batch_size=128, lr=0.1, weight_decay=0.0,
                                schedule="multistep", milestones=(60, 100, 140)),
}


def lr_factor(cfg: TrainConfig, steps_per_epoch: int, it: int) -> float:
    """Multiplier of ``cfg.lr`` at iteration ``it`` (0-based); schedules act per iteration."""
    e = it / steps_per_epoch  # fractional epoch
    warm = cfg.warmup_epochs
    f = min(1.0, (it + 1) / (warm * steps_per_epoch)) if warm > 0 else 1.0
    if cfg.schedule == "step":
        f *= cfg.gamma ** math.floor(e / cfg.step_size)
    elif cfg.schedule == "multistep":
        f *= cfg.gamma ** sum(e >= m for m in cfg.milestones)
    elif cfg.schedule == "cosine":
        span = max(cfg.epochs - warm, 1e-12)
        f *= 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, e - warm) / span)))
    return f


def _steps_per_epoch(n: int, batch: int) -> int:
    full, rest = divmod(n, batch)
    return full + (rest >= 2)  # a last batch of one image is dropped (BatchNorm cannot train on it)


@contextlib.contextmanager
def _global_mode(cfg: TrainConfig, device: torch.device):
    """Deterministic algorithms / cudnn autotune for the duration of ``fit``, then restored."""
    cudnn = torch.backends.cudnn
    prev = (torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(), cudnn.benchmark, cudnn.deterministic)
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


@torch.no_grad()
def _evaluate(net: nn.Module, split: Split, tf: BatchTransform, batch: int, amp: bool, topk: bool):
    net.eval()
    dev = split.x.device
    loss = torch.zeros((), dtype=torch.float64, device=dev)
    hits = torch.zeros(2, dtype=torch.long, device=dev)  # top-1, top-5
    for i in range(0, len(split), batch):
        y = split.y[i : i + batch]
        with torch.autocast(dev.type, torch.bfloat16, enabled=amp):
            logits = net(tf.normalize(split.x[i : i + batch])).float()  # (B, K)
        loss += F.cross_entropy(logits, y, reduction="sum")
        hits[0] += (logits.argmax(1) == y).sum()
        if topk:
            hits[1] += (logits.topk(5, 1).indices == y[:, None]).any(1).sum()
    n = max(len(split), 1)
    out = {"loss": loss.item() / n, "acc": hits[0].item() / n}
    if topk:
        out["top5"] = hits[1].item() / n
    return out


def evaluate(model: nn.Module, data: Dataset, split: str = "test", *, batch_size: int = 1000,
             amp: bool = False) -> dict[str, float]:
    """Mean cross-entropy ``loss``, top-1 ``acc`` (and ``top5`` when > 10 classes) on a split."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"`split` must be 'train', 'val' or 'test', but got split={split!r}")
    tf = BatchTransform(data.mean, data.std, device=data.device)
    return _evaluate(model, getattr(data, split), tf, batch_size, amp, data.num_classes > 10)


def _train_epoch(net, opt, sched, tf: BatchTransform, split: Split, cfg: TrainConfig,
                 gen: torch.Generator, amp: bool) -> tuple[float, float, int]:
    """One pass over ``split`` in a seeded random order; returns (mean loss, top-1, images)."""
    net.train()
    dev, b = split.x.device, cfg.batch_size
    perm = torch.randperm(len(split), generator=gen, device=dev)
    loss_sum = torch.zeros((), device=dev)
    hits = torch.zeros((), dtype=torch.long, device=dev)
    params = [p for g in opt.param_groups for p in g["params"]]
    seen = 0
    for i in range(0, _steps_per_epoch(len(split), b) * b, b):
        idx = perm[i : i + b]
        x = tf.augment(split.x[idx], gen) if cfg.augment else tf.normalize(split.x[idx])  # (B, C, H, W)
        y = split.y[idx]
        with torch.autocast(dev.type, torch.bfloat16, enabled=amp):
            logits = net(x)  # (B, K)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        loss_sum += loss.detach() * y.shape[0]
        hits += (logits.detach().argmax(1) == y).sum()
        seen += y.shape[0]
    return loss_sum.item() / seen, hits.item() / seen, seen


def _check_finite(model: nn.Module, loss: float, epoch: int) -> None:
    if not math.isfinite(loss):
        raise Diverged(epoch, f"training loss is {loss}")
    tensors = [t.detach() for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if tensors and not torch.isfinite(torch.nn.utils.get_total_norm(tensors)):
        raise Diverged(epoch, "non-finite weights")


def _setup(model: nn.Module, data: Dataset, cfg: TrainConfig, device: torch.device, amp: bool):
    cl = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if cl else torch.preserve_format)
    steps = _steps_per_epoch(len(data.train), cfg.batch_size)
    if steps == 0:
        raise ValueError(f"the training split has {len(data.train)} image(s); need at least 2")
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                          weight_decay=cfg.weight_decay, fused=True if device.type == "cuda" else None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(cfg, steps, it))
    tf = BatchTransform(data.mean, data.std, crop_pad=data.crop_pad, flip=data.flip, device=device,
                        channels_last=cl)
    net = torch.compile(model) if cfg.compile else model
    return net, opt, sched, tf


def fit(model: nn.Module, data: Dataset, config: TrainConfig | None = None, report: Report | None = None,
        *, checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1,
        resume: str | os.PathLike | None = None) -> dict[str, float]:
    """Train ``model`` on ``data.train``; validate on ``data.val`` after every epoch.

    Args:
        config: a :class:`TrainConfig` (default: ``TrainConfig()``); see :data:`RECIPES`.
        report: ``report(epoch, metrics) -> should_stop`` after each epoch (epoch 1-based).
        checkpoint: file written atomically every ``checkpoint_every`` epochs, at the end and when
            ``report`` stops the run.
        resume: a checkpoint to continue from (model, optimiser, scheduler, RNG, history).

    Returns:
        The last epoch's metrics (``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``
        [``val_top5``], ``lr``, ``images_per_s``, ``epoch_time_s``) plus ``best_val_acc``,
        ``best_epoch``, ``epochs_run``, ``stopped_early`` and ``test_*`` when ``eval_test``.
        Accuracies are fractions in [0, 1].

    Raises:
        Diverged: the loss or the weights became non-finite.
    """
    cfg = config if config is not None else TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"`config` must be a TrainConfig, but got {type(cfg).__name__}; see RECIPES")
    device = _resolve_device(cfg.device)
    amp = cfg.amp if cfg.amp is not None else device.type == "cuda"
    topk = data.num_classes > 10
    with _global_mode(cfg, device):
        torch.manual_seed(cfg.seed)
        data = data.to(device)
        net, opt, sched, tf = _setup(model, data, cfg, device, amp)
        gen = torch.Generator(device=device).manual_seed(cfg.seed)
        start, history = 0, []
        if resume is not None:
            ck = load_checkpoint(resume)
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            set_rng_state(ck["rng"], gen)
            start, history = int(ck["epoch"]), list(ck["history"])
        stopped = False
        for epoch in range(start + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            loss, acc, seen = _train_epoch(net, opt, sched, tf, data.train, cfg, gen, amp)
            t_train = time.perf_counter() - t0
            _check_finite(model, loss, epoch)
            m = {"epoch": epoch, "train_loss": loss, "train_acc": acc, "lr": opt.param_groups[0]["lr"],
                 "images_per_s": seen / t_train}
            if len(data.val):
                v = _evaluate(net, data.val, tf, cfg.eval_batch_size, amp, topk)
                m |= {f"val_{k}": x for k, x in v.items()}
            m["epoch_time_s"] = time.perf_counter() - t0
            history.append(m)
            stopped = bool(report(epoch, dict(m))) if report is not None else False
            if checkpoint is not None and (stopped or epoch == cfg.epochs or epoch % checkpoint_every == 0):
                save_checkpoint(checkpoint, model, optimizer=opt, scheduler=sched, epoch=epoch,
                                config=dataclasses.asdict(cfg), data=data.describe(),
                                rng=rng_state(gen), history=history)
            if stopped:
                break
        return _final(net, data, cfg, tf, amp, topk, history, stopped)


def _final(net, data, cfg, tf, amp, topk, history, stopped) -> dict[str, float]:
    out = dict(history[-1]) if history else {}
    vals = [(h["val_acc"], h["epoch"]) for h in history if "val_acc" in h]
    if vals:
        best = max(vals, key=lambda t: (t[0], -t[1]))
        out |= {"best_val_acc": best[0], "best_epoch": best[1]}
    out |= {"epochs_run": len(history), "stopped_early": stopped}
    if cfg.eval_test and len(data.test):
        out |= {f"test_{k}": x for k, x in _evaluate(net, data.test, tf, cfg.eval_batch_size, amp, topk).items()}
    return out


if __name__ == "__main__":  # python -m odeattn.train
    import sys

    from odeattn._train_cli import main

    sys.exit(main())
