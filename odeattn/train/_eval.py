"""Evaluation of a classifier on one split of an :mod:`odeattn.data` bundle.

Mean cross-entropy ``loss`` and top-1 ``accuracy`` (fractions in [0, 1]; ``top5`` too when the
dataset has more than 10 classes), in eval mode, in batches, with bf16 autocast when asked.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from odeattn.data import BatchTransform, Dataset, Split

__all__ = ["evaluate", "evaluate_split"]


@torch.no_grad()
def evaluate_split(
    net: nn.Module, split: Split, tf: BatchTransform, batch: int, amp: bool, topk: bool
) -> dict[str, float]:
    """Eval-mode mean loss, top-1 ``accuracy`` (and ``top5``) of ``net`` on one split."""
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
    out = {"loss": loss.item() / n, "accuracy": hits[0].item() / n}
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
    """Mean cross-entropy ``loss``, top-1 ``accuracy`` (and ``top5`` when > 10 classes) on a split."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"`split` must be 'train', 'val' or 'test', but got split={split!r}")
    tf = BatchTransform(data.mean, data.std, device=data.device)
    return evaluate_split(model, getattr(data, split), tf, batch_size, amp, data.num_classes > 10)
