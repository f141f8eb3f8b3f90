"""One epoch of SGD over a split kept on the device, and the divergence check after it.

The split is visited in a seeded random order (``torch.randperm`` with the run's generator); each
batch is augmented / normalised on the device, cross-entropy (optional label smoothing) is
back-propagated under optional bf16 autocast, gradients are optionally clipped by global norm, and
the learning-rate schedule steps per iteration. A last batch of one image is dropped (BatchNorm
cannot train on it). Non-finite loss or weights raise :class:`Diverged` with the epoch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from odeattn.data import BatchTransform, Split
from odeattn.train._recipes import TrainConfig

__all__ = ["Diverged", "check_finite", "steps_per_epoch", "train_epoch"]


class Diverged(RuntimeError):
    """Training produced a non-finite loss or non-finite weights; ``.epoch`` says when."""

    def __init__(self, epoch: int, what: str) -> None:
        self.epoch, self.what = int(epoch), what
        super().__init__(
            f"training diverged in epoch {epoch}: {what}; lower `lr` or set `grad_clip`"
        )

    def __reduce__(self):  # picklable across processes (Ray)
        return (Diverged, (self.epoch, self.what))


def steps_per_epoch(n: int, batch: int) -> int:
    full, rest = divmod(n, batch)
    return full + (rest >= 2)  # a last batch of one image is dropped (BatchNorm cannot train on it)


def train_epoch(
    net: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
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
    for i in range(0, steps_per_epoch(len(split), b) * b, b):
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


def check_finite(model: nn.Module, loss: float, epoch: int) -> None:
    if not math.isfinite(loss):
        raise Diverged(epoch, f"training loss is {loss}")
    tensors = [t.detach() for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if tensors and not torch.isfinite(torch.nn.utils.get_total_norm(tensors)):
        raise Diverged(epoch, "non-finite weights")
