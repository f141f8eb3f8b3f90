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
import math
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from odeattn.data import Dataset, Split
from odeattn.data._augment import BatchTransform
from odeattn.models._checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
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


class Diverged(RuntimeError):
    """Training produced a non-finite loss or non-finite weights; ``.epoch`` says when."""

    def __init__(self, epoch: int, what: str) -> None:
        self.epoch, self.what = int(epoch), what
        super().__init__(
            f"training diverged in epoch {epoch}: {what}; lower `lr` or set `grad_clip`"
        )

    def __reduce__(self):  # picklable across processes (Ray)
        return (Diverged, (self.epoch, self.what))


def _steps_per_epoch(n: int, batch: int) -> int:
    full, rest = divmod(n, batch)
    return full + (rest >= 2)  # a last batch of one image is dropped (BatchNorm cannot train on it)


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


def evaluate(
    model: nn.Module,
    data: Dataset,
    split: str = "test",
    *,
    batch_size: int = 1000,
    amp: bool = False,
) -> dict[str, float]:
    """Mean cross-entropy ``loss``, top-1 ``acc`` (and ``top5`` when > 10 classes) on a split."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"`split` must be 'train', 'val' or 'test', but got split={split!r}")
    tf = BatchTransform(data.mean, data.std, device=data.device)
    return _evaluate(model, getattr(data, split), tf, batch_size, amp, data.num_classes > 10)


def _train_epoch(
    net,
    opt,
    sched,
    tf: BatchTransform,
    split: Split,
    cfg: TrainConfig,
    gen: torch.Generator,
    amp: bool,
) -> tuple[float, float, int]:
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
        x = (
            tf.augment(split.x[idx], gen) if cfg.augment else tf.normalize(split.x[idx])
        )  # (B, C, H, W)
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
    return net, opt, sched, tf


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
    """Train ``model`` on ``data.train``; validate on ``data.val`` after every epoch.

    Each epoch visits the training split in a seeded random order (a last batch of a single
    image is skipped: BatchNorm cannot train on it). ``torch.manual_seed(config.seed)`` is called
    first; the data order and augmentation use their own generator, saved in checkpoints.

    Args:
        config: a :class:`TrainConfig` (default: ``TrainConfig()``); see :data:`RECIPES`.
        report: ``report(epoch, metrics) -> should_stop`` after each epoch (epoch 1-based).
        checkpoint: file written atomically every ``checkpoint_every`` epochs, at the end and when
            ``report`` stops the run.
        resume: a checkpoint to continue from (model, optimiser, scheduler, RNG, history).

    Returns:
        The last epoch's metrics (``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``
        [``val_top5`` when > 10 classes], ``lr`` at the epoch's end, ``images_per_s`` of the
        training pass, ``epoch_time_s`` with validation) plus ``best_val_acc``,
        ``best_epoch``, ``epochs_run``, ``stopped_early`` and ``test_*`` when ``eval_test``.
        Accuracies are fractions in [0, 1].

    Raises:
        Diverged: the loss or the weights became non-finite.
    """
    cfg = config if config is not None else TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(
            f"`config` must be a TrainConfig, but got {type(cfg).__name__}; see RECIPES"
        )
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
            m = {
                "epoch": epoch,
                "train_loss": loss,
                "train_acc": acc,
                "lr": opt.param_groups[0]["lr"],
                "images_per_s": seen / t_train,
            }
            if len(data.val):
                v = _evaluate(net, data.val, tf, cfg.eval_batch_size, amp, topk)
                m |= {f"val_{k}": x for k, x in v.items()}
            m["epoch_time_s"] = time.perf_counter() - t0
            history.append(m)
            stopped = bool(report(epoch, dict(m))) if report is not None else False
            if checkpoint is not None and (
                stopped or epoch == cfg.epochs or epoch % checkpoint_every == 0
            ):
                save_checkpoint(
                    checkpoint,
                    model,
                    optimizer=opt,
                    scheduler=sched,
                    epoch=epoch,
                    config=dataclasses.asdict(cfg),
                    data=data.describe(),
                    rng=rng_state(gen),
                    history=history,
                )
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
        out |= {
            f"test_{k}": x
            for k, x in _evaluate(net, data.test, tf, cfg.eval_batch_size, amp, topk).items()
        }
    return out
