"""BatchNorm recalibration and scoring of one architecture with the supernet's weights.

The running statistics of a supernet's BatchNorms average over every path trained through it;
before a path is scored they are re-estimated for that path alone (SPOS, Guo et al. 2020, Sec. 3:
"the statistics of all BN operations are recalculated" per candidate; EAN scores its connection
schemes with the supernet's weights the same way). :func:`recalibrate` resets every BatchNorm
the path calls and, with the rest of the network in eval mode (no dropout), sets its statistics
to the plain average over a fixed set of batches (``momentum=None``: the cumulative average,
``mean = (1/N) Σ_n mean_n``, ``var = (1/N) Σ_n var_n`` with the unbiased batch variances).
:func:`score` does that on fixed training batches, evaluates, and puts every buffer back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from odeattn._errors import must
from odeattn.data import BatchTransform, Dataset
from odeattn.train import evaluate

__all__ = ["calibration_batches", "recalibrate", "score"]


def _modules(net: nn.Module, arch: Mapping[str, Any]) -> list[nn.Module]:
    """Every module a forward of ``arch`` may call (a narrow path of an elastic-width supernet
    also runs its skeleton's, see ``Supernet.path_modules``)."""
    return net.path_modules(arch) if hasattr(net, "path_modules") else list(net.modules())


def _called_norms(
    net: nn.Module, modules: list[nn.Module], arch: Mapping[str, Any], x: Tensor
) -> list[_BatchNorm]:
    """The BatchNorms one eval-mode forward of ``arch`` calls (statistics untouched)."""
    called: list[_BatchNorm] = []
    norms = [m for m in modules if isinstance(m, _BatchNorm)]
    hooks = [m.register_forward_pre_hook(lambda m, _: called.append(m)) for m in norms]
    try:
        with torch.no_grad():
            net(x, arch)
    finally:
        for h in hooks:
            h.remove()
    return list({id(m): m for m in called}.values())


def recalibrate(supernet: nn.Module, arch: Mapping[str, Any], batches: Iterable[Tensor]) -> int:
    """Reset and re-estimate the running statistics of the BatchNorms ``arch`` uses, from
    ``batches`` (normalised inputs (B, C, H, W)); nothing else changes (weights, other
    BatchNorms, train/eval modes). A narrow path of an elastic-width supernet resets and
    re-estimates the leading channels it uses (its skeleton's BatchNorms hold views of them, so
    each is reset at its first call). Returns the number of BatchNorms recalibrated."""
    batches = list(batches)
    if not batches:
        raise must("batches", "hold at least one input batch", batches)
    modules = _modules(supernet, arch)
    modes = [(m, m.training) for m in modules]
    try:
        supernet.eval()
        used = _called_norms(supernet, modules, arch, batches[0])
        momenta = [(m, m.momentum) for m in used]
        done: set[int] = set()

        def reset_once(m: _BatchNorm, _: Any) -> None:
            if id(m) not in done:  # (a view's values are the supernet's only inside the call)
                done.add(id(m))
                m.reset_running_stats()

        hooks = [m.register_forward_pre_hook(reset_once) for m in used]
        for m in used:
            m.momentum = None  # cumulative average over the batches
            m.train()
        try:
            with torch.no_grad():
                for x in batches:
                    supernet(x, arch)
        finally:
            for h in hooks:
                h.remove()
            for m, momentum in momenta:
                m.momentum = momentum
    finally:
        for m, training in modes:
            m.training = training
    return len(used)


def calibration_batches(
    data: Dataset, count: int, *, batch_size: int = 64, seed: int = 0
) -> list[Tensor]:
    """``count`` normalised batches of the training split, a seeded random subset (no
    augmentation): the same images for every architecture scored with the same seed."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise must("recal_batches", "be a positive int", count)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise must("batch_size", "be an int ≥ 2 (BatchNorm needs 2 images)", batch_size)
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(data.train), generator=gen)[: count * batch_size].to(data.device)
    tf = BatchTransform(data.mean, data.std, device=data.device)
    chunks = [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
    return [tf.normalize(data.train.x[c]) for c in chunks if len(c) >= 2]  # (B, C, H, W) each


class _Fixed(nn.Module):
    """One architecture of a supernet as a plain classifier ``forward(x)``."""

    def __init__(self, supernet: nn.Module, arch: Mapping[str, Any]) -> None:
        super().__init__()
        self.supernet, self.arch = supernet, arch

    def forward(self, x: Tensor) -> Tensor:
        return self.supernet(x, self.arch)


def score(
    supernet: nn.Module,
    arch: Mapping[str, Any],
    data: Dataset,
    *,
    recal_batches: int = 20,
    batch_size: int = 64,
    split: str = "val",
    seed: int = 0,
) -> dict[str, float]:
    """``{split}_accuracy`` and ``{split}_loss`` of ``arch`` with the supernet's weights, after
    BatchNorm recalibration on ``recal_batches`` fixed training batches; no training. Every
    buffer and mode is restored afterwards, so scores do not depend on the order of calls."""
    device = next(supernet.parameters()).device
    data = data.to(device)
    batches = calibration_batches(data, recal_batches, batch_size=batch_size, seed=seed)
    saved = [(b, b.detach().clone()) for b in supernet.buffers()]
    modes = [(m, m.training) for m in supernet.modules()]
    try:
        recalibrate(supernet, arch, batches)
        metrics = evaluate(_Fixed(supernet, arch), data, split, batch_size=max(batch_size, 256))
    finally:
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)
        for m, training in modes:
            m.training = training
    return {f"{split}_{k}": v for k, v in metrics.items()}
