"""One recorded forward pass that leaves the model as it found it: the shared probe behind
:func:`odeattn.stiffness.measure`, ``odeattn.proxies.tns_at_init`` and the search's stiffness
metrics (StepNet, ICCV 2023, Def. 1–2: per-sample NSI of every measured block, TNS from it).

``bn_mode="train"`` normalises with batch statistics (the running statistics of an untrained
network are meaningless); ``"eval"`` uses the running statistics. Either way every buffer (BN
running statistics, batch counters) and the train/eval mode are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from odeattn._errors import must
from odeattn.stiffness._recorder import record

__all__ = ["BN_MODES", "as_found", "preserved", "record_batch"]

BN_MODES = ("train", "eval")


@contextmanager
def as_found(model: nn.Module) -> Iterator[nn.Module]:
    """Restore every module's train/eval mode and every buffer (BN statistics, counters) on exit."""
    modes = [(m, m.training) for m in model.modules()]
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield model
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
        for module, training in modes:
            module.training = training


@contextmanager
def preserved(model: nn.Module, *, bn_mode: str = "eval") -> Iterator[nn.Module]:
    """Run the body with ``model.train(bn_mode == "train")``; restore modes and buffers after."""
    if bn_mode not in BN_MODES:
        raise must("bn_mode", "be 'train' or 'eval'", bn_mode, valid=BN_MODES)
    with as_found(model):
        model.train(bn_mode == "train")
        yield model


def record_batch(
    model: nn.Module,
    x: Tensor,
    *,
    kind: str = "step",
    bn_mode: str = "eval",
    allow_empty: bool = False,
) -> tuple[Tensor, list[int]]:
    """(NSI (N, L) float64, stage id of each column) of ``model`` on the batch ``x``, no grad.

    ``x`` is moved to the model's device. A model without a measurable block (one block per
    stage) raises RuntimeError, or with ``allow_empty=True`` gives an (N, 0) matrix and ``[]``.
    """
    param = next(model.parameters(), None)
    if param is not None:  # after fit() on CUDA the model lives there
        x = x.to(param.device)
    with preserved(model, bn_mode=bn_mode), torch.no_grad(), record(model) as rec:
        model(x)
    if allow_empty and rec.measured == 0:
        return torch.zeros(x.shape[0], 0, dtype=torch.float64), []
    return rec.nsi(kind), rec.stage
