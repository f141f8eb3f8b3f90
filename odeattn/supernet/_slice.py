"""Elastic width: a narrow architecture runs on the leading channels of the shared tensors.

Once-for-All (Cai et al. 2020, "Once-for-All: Train One Network and Specialize it") keeps one
set of weights at the largest width and serves a width w by its first w channels: a stage of
width w uses ``W[:w_out, :w_in]`` of every convolution, ``γ[:w]``, ``β[:w]`` and the running
statistics ``μ[:w]``, ``σ²[:w]`` of every BatchNorm, and the same leading part of its adaptor
(an SE bottleneck of ``C // r`` hidden units uses the first ones of the widest's). Generic and
exact: the architecture is built once as a stand-alone skeleton ``create_model(name, **fixed,
**arch)`` (cached, LRU), each of its tensors is mapped to its supernet source by the same pairs
``extract`` copies (:func:`~odeattn.supernet._bank.path_pairs`), and the skeleton runs with views
of those sources (``torch.func.functional_call``): gradients and in-place BatchNorm updates land
in the leading slice of the shared tensors, and ``forward(x, arch) == extract(arch)(x)``. The
kernel (spatial) dims of a convolution weight are cropped at their centre, as OFA's elastic
kernels: ECA's 1-D kernel grows with the channel count (``k = 1`` at 4 channels, 3 at 32), so a
narrow ECA uses the middle tap of the widest's kernel, which leading slicing would get wrong.
Layout caveat: a weight whose rows are several channel blocks (a DIA cell's four LSTM gates,
``4C``) is cut at its first rows, not per block; exact against ``extract``, not a narrow DIA.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd

from odeattn.models import create_model

__all__ = ["Skeletons", "fit", "pair_tensors", "run_sliced"]

Pair = tuple[nn.Module, nn.Module, bool]  # (stand-alone module, supernet module, partial)


def fit(src: Tensor, shape: Sequence[int], kernel: bool, name: str) -> Tensor:
    """The view of ``src`` of ``shape``: leading entries of every dim, the centre of the kernel
    dims (≥ 2) of a convolution weight (``kernel``). A dim larger than src's is a RuntimeError."""
    if len(shape) != src.dim() or any(d > s for d, s in zip(shape, src.shape)):
        raise RuntimeError(
            f"supernet tensor {name!r} of shape {tuple(src.shape)} cannot serve a tensor of "
            f"shape {tuple(shape)} (the supernet is built at the largest width of each stage)"
        )
    index = []
    for i, (d, s) in enumerate(zip(shape, src.shape)):
        start = (s - d) // 2 if kernel and i >= 2 else 0
        index.append(slice(start, start + d))
    return src[tuple(index)]


def pair_tensors(dst: nn.Module, src: nn.Module, partial: bool) -> dict[str, tuple[Tensor, Tensor]]:
    """dst's state_dict keys -> (dst tensor, the view of src's tensor of the same key it takes);
    ``partial``: src may hold more keys (a stage-shared adaptor's norms for more blocks)."""
    want, have = dst.state_dict(keep_vars=True), src.state_dict(keep_vars=True)
    extra = set(have) - set(want)
    if set(want) - set(have) or (extra and not partial):
        raise RuntimeError(
            f"supernet layout mismatch: {type(dst).__name__} needs {sorted(want)}, "
            f"the supernet holds {sorted(have)}"
        )
    kernels = {
        f"{n}.weight" if n else "weight" for n, m in dst.named_modules() if isinstance(m, _ConvNd)
    }
    return {k: (t, fit(have[k], t.shape, k in kernels, k)) for k, t in want.items()}


class Skeletons:
    """Stand-alone models per architecture (LRU, ``size`` entries) and their tensor names."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._cache: OrderedDict[str, tuple[nn.Module, dict[int, list[str]]]] = OrderedDict()

    def get(
        self, name: str, fixed: Mapping[str, Any], arch: Mapping[str, Any], ref: Tensor
    ) -> tuple[nn.Module, dict[int, list[str]]]:
        """The skeleton of ``arch`` on ``ref``'s device and dtype, and per tensor id its names."""
        key = repr((sorted(arch.items()), ref.device, ref.dtype))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        with torch.random.fork_rng(devices=[]):  # its own values are never used: keep the RNG
            model = create_model(name, **fixed, **arch).to(device=ref.device, dtype=ref.dtype)
        names: dict[int, list[str]] = {}
        for n, t in [*model.named_parameters(remove_duplicate=False),
                     *model.named_buffers(remove_duplicate=False)]:  # fmt: skip
            names.setdefault(id(t), []).append(n)
        self._cache[key] = (model, names)
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return model, names


def run_sliced(
    model: nn.Module, names: Mapping[int, list[str]], pairs: Sequence[Pair], x: Tensor, train: bool
) -> Tensor:
    """``model(x)`` with every tensor replaced by the view of its supernet source (strict)."""
    tensors: dict[str, Tensor] = {}
    for dst, src, partial in pairs:
        for t, view in pair_tensors(dst, src, partial).values():
            tensors.update(dict.fromkeys(names[id(t)], view))
    left = [n for ns in names.values() for n in ns if n not in tensors]
    if left:
        raise RuntimeError(f"the supernet does not hold these tensors of the model: {left}")
    if model.training != train:
        model.train(train)  # (recalibration switches single BatchNorms; a root change resets)
    return torch.func.functional_call(model, tensors, (x,), strict=True)
