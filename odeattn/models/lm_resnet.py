"""LM-ResNet: residual networks whose blocks are linear multistep steps (compiled method graphs).

Lu, Zhong, Li & Dong, "Beyond Finite Layer Neural Networks: Bridging Deep Architectures and
Numerical Differential Equations", ICML 2018, Eq. 5:

    x_{n+1} = (1 − k_n) x_n + k_n x_{n−1} + f_n(x_n),   k_n ∈ ℝ learnable, one per block,

the linear two-step scheme of which ResNet (k_n = 0) is forward Euler. Each block is
``compile_step(MethodGraph.multistep("lm"), branch, shortcut=…)`` (:class:`MultistepStep`); the
first block reads x_{−1} = x_0 (a plain residual step, so its k_0 has no effect: zero
gradient, kept so that there is one k per block as in the paper's count); a projection shortcut maps x_n and the
kept x_{n−1} alike. The stem, branches, shortcuts and head are those of the same-depth
:mod:`odeattn.models.resnet` network, so the parameter count is the ResNet's plus one k_n per
block. ``method`` per stage may be any multistep scheme — ``"lm"``, ``"ab1"…"ab6"``
(Adams–Bashforth, unit steps), ``"pece1"…"pece6"`` (Adams PECE) — or a one-step tableau name
(then the history restarts after that block).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from odeattn._errors import unknown_name
from odeattn.compile import MultistepStep, compile_step
from odeattn.graph import MethodGraph
from odeattn.models._registry import register_variant
from odeattn.models.resnet import Head, _branches, _check_scalars, _norm, _stem
from odeattn.tableau import TABLEAUS

__all__ = ["MULTISTEP_METHODS", "LMResNet", "lm_resnet", "multistep_graph"]

MULTISTEP_METHODS = ("lm", *(f"ab{p}" for p in range(1, 7)), *(f"pece{p}" for p in range(1, 7)))


def multistep_graph(method: str) -> MethodGraph | None:
    """``"lm"`` / ``"abP"`` / ``"peceP"`` → its multistep graph; a tableau name → None."""
    if method == "lm":
        return MethodGraph.multistep("lm")
    if method in MULTISTEP_METHODS:
        scheme = "adams_bashforth" if method.startswith("ab") else "adams_pece"
        return MethodGraph.multistep(scheme, int(method[-1]))
    if method in TABLEAUS:
        return None
    raise unknown_name("method", method, [*MULTISTEP_METHODS, *sorted(TABLEAUS)])


class LMResNet(nn.Module):
    """stem -> blocks (multistep, carrying the history across blocks and stages) -> head."""

    def __init__(
        self, stem: nn.Module, stages: Sequence[Sequence[nn.Module]], head: nn.Module, arch: dict
    ):
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(nn.ModuleList(s) for s in stages)
        self.head = head
        self._arch = arch

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) -> (B, num_classes)
        x, hist = self.stem(x), None
        for stage in self.stages:
            for block in stage:
                if isinstance(block, MultistepStep):
                    x, hist = block(x, hist)
                else:
                    x, hist = block(x), None
        return self.head(x)

    def architecture(self) -> dict[str, Any]:
        """Plain dict; ``create_model(**arch)`` rebuilds this network."""
        return copy.deepcopy(self._arch)


def _methods(method: Any, n_stages: int) -> list[str]:
    names = list(method) if isinstance(method, (list, tuple)) else [method] * n_stages
    if len(names) != n_stages:
        raise ValueError(
            f"`method` must be one name or {n_stages} names (one per stage), but got method={method!r}"
        )
    for m in names:
        multistep_graph(str(m))
    return [str(m) for m in names]


def _blocks(arch: dict, norm: Any) -> tuple[list[list[nn.Module]], int]:
    stages, cin = [], arch["stem_width"]
    for s, (width, n) in enumerate(zip(arch["widths"], arch["blocks"])):
        branches, shortcuts, cin = _branches(
            "basic", cin, width, n, 1 if s == 0 else 2, arch["preact"], arch["dropout"], norm
        )
        graph = multistep_graph(arch["method"][s])
        blocks = []
        for i, (branch, shortcut) in enumerate(zip(branches, shortcuts)):
            block = compile_step(graph or arch["method"][s], branch, shortcut=shortcut)
            blocks.append(block.set_position(s, i))
        stages.append(blocks)
    return stages, cin


def lm_resnet(
    *,
    name: str,
    num_classes: int = 10,
    in_channels: int = 3,
    blocks: Sequence[int] = (3, 3, 3),
    widths: Sequence[int] = (16, 32, 64),
    stem_width: int = 16,
    dropout: float = 0.0,
    norm: str = "bn",
    method: Any = "lm",
) -> LMResNet:
    """Pre-activation basic-block LM-ResNet (CIFAR/digits stem), ``method`` per stage."""
    blocks_t, widths_t = tuple(int(b) for b in blocks), tuple(int(w) for w in widths)
    if len(blocks_t) != len(widths_t) or not blocks_t or min(blocks_t) < 1:
        raise ValueError(
            f"`blocks` must be positive ints, one per width, but got blocks={blocks!r}"
        )
    _check_scalars(
        num_classes=num_classes, in_channels=in_channels, stem_width=stem_width, dropout=dropout
    )
    arch = {
        "name": name,
        "family": "lm_resnet",
        "num_classes": num_classes,
        "in_channels": in_channels,
        "blocks": list(blocks_t),
        "widths": list(widths_t),
        "stem_width": stem_width,
        "dropout": float(dropout),
        "norm": norm,
        "method": _methods(method, len(blocks_t)),
        "preact": True,
    }
    norm_cls = _norm(norm)
    stages, cin = _blocks(arch, norm_cls)
    arch.pop("preact")
    stem = _stem("cifar", in_channels, stem_width, True, norm_cls)
    return LMResNet(stem, stages, Head(cin, num_classes, preact=True), arch)


for _d in (20, 32, 44, 56, 110):  # depth 6n + 2, as resnet20…110
    register_variant(lm_resnet, f"lm_resnet{_d}", family="lm_resnet", blocks=((_d - 2) // 6,) * 3)
register_variant(lm_resnet, "digits_lm_resnet", family="lm_resnet", in_channels=1, blocks=(3, 3, 3))
