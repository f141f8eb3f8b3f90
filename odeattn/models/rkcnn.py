"""RKCNN (Zhu, Chang & Fu, Neural Comput. Appl. 2023): each time step is an s-stage RK block.

The RK coefficients and the step are absorbed into the stage networks, which are densely
connected (published code ``ZhuMai/RKCNN``):

    initial stage j = 1..s:  k_j = N_j(concat[x, k_1, …, k_{j-1}])               (C·j channels in)
    update sweeps (I, R):    k_j = U_j(concat[x, k_i for i ≠ j])                 (s·C channels in)
        RKCNN-I: Gauss–Seidel (a new k_j replaces the old one at once),
        RKCNN-R: Jacobi (every stage uses the previous sweep's values),
        RKCNN-E: no sweep;
    output  y = x + Σ_j k_j  (equal weights; Φ = Σ_j k_j, Δt = 1).

``N_j``/``U_j`` = BN-ReLU-conv1x1(→ neck·C)-[dropout]-BN-ReLU-conv3x3(→ C)-[dropout] with
BN(eps 1e-3, momentum 0.01); the update networks are shared by all sweeps, as published. The
block is compiled from ``MethodGraph.rkcnn(variant, stages, sweeps)`` by ``compile_step``; the
frame (preprocessor, attentional transitions with reduction 2, multiscale head) is
:class:`~odeattn.models._framework.RKFramework`. ``"rkcnn-R-3_4_4"`` = variant R, stages (3, 4, 4).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from odeattn.compile import compile_step
from odeattn.graph import MethodGraph
from odeattn.models._common import stage_tuple
from odeattn.models._framework import RKFramework, rk_norm
from odeattn.models._registry import register, register_parser
from odeattn.models.blocks import Stage

__all__ = ["RKStageNet", "rkcnn"]

_VARIANTS = ("E", "I", "R")


class RKStageNet(nn.Module):
    """One stage network: BN-ReLU-conv1x1(cin→wk)-[drop]-BN-ReLU-conv3x3(wk→C)-[drop]."""

    def __init__(self, cin: int, wk: int, cout: int, dropout: float = 0.0):
        super().__init__()
        self.bn1 = rk_norm(cin)
        self.conv1 = nn.Conv2d(cin, wk, 1, bias=False)
        self.bn2 = rk_norm(wk)
        self.conv2 = nn.Conv2d(wk, cout, 3, padding=1, bias=False)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:  # (B, cin, H, W) -> (B, C, H, W)
        out = self.drop(self.conv1(self.bn1(x).relu()))
        return self.drop(self.conv2(self.bn2(out).relu()))


def _rk_block(variant: str, s: int, sweeps: int, width: int, wk: int, dropout: float) -> nn.Module:
    """One RK time step compiled from the RKCNN method graph (stage loop lives in compile)."""

    fields = [RKStageNet(width * (j + 1), wk, width, dropout) for j in range(s)]
    if sweeps:
        fields += [RKStageNet(width * s, wk, width, dropout) for _ in range(s)]
    return compile_step(MethodGraph.rkcnn(variant, s, sweeps), fields)


def _validate(variant: str, sweeps: int | None, neck: int) -> tuple[str, int]:
    """(variant letter, number of update sweeps) after checking variant, sweeps and neck."""
    if isinstance(neck, bool) or not isinstance(neck, int) or neck < 1:
        raise ValueError(f"`neck` must be a positive int, but got neck={neck!r}")
    v = str(variant).upper()
    if v not in _VARIANTS:
        raise ValueError(f"`variant` must be one of 'E', 'I', 'R', but got variant={variant!r}")
    if sweeps is None:
        return v, 0 if v == "E" else 1
    if isinstance(sweeps, bool) or not isinstance(sweeps, int) or sweeps < 0:
        raise ValueError(f"`sweeps` must be an int >= 0, but got sweeps={sweeps!r}")
    if v == "E" and sweeps:
        raise ValueError(
            f"RKCNN-E has no update sweeps; use variant 'I' or 'R' for sweeps={sweeps}"
        )
    if v != "E" and not sweeps:
        raise ValueError(f"RKCNN-{v} needs sweeps >= 1 (sweeps=0 is RKCNN-E), but got sweeps=0")
    return v, sweeps


def _period(
    p: int, steps: int, v: str, s: int, sweeps: int, width: int, neck: int, dropout: float
) -> Stage:
    """Period ``p`` of the frame: ``steps`` RK blocks of ``s`` stages each, positions set."""
    blocks = [_rk_block(v, s, sweeps, width, neck * width, dropout) for _ in range(steps)]
    for b, block in enumerate(blocks):
        block.set_position(p, b)
    return Stage(blocks)


@register("rkcnn", family="rkcnn")
def rkcnn(
    *,
    variant: str = "R",
    stages: Sequence[int] = (3, 4, 4),
    growth: Sequence[int] = (180, 180, 180),
    num_classes: int = 10,
    in_channels: int = 3,
    sweeps: int | None = None,
    steps: Sequence[int] | None = None,
    neck: int = 1,
    attention: bool = True,
    multiscale: bool = True,
    dropout: float = 0.0,
) -> RKFramework:
    """RKCNN-{variant}-{stages}: ``stages[i]`` RK stages per block, ``growth[i]`` = period width k_i,
    ``steps[i]`` RK blocks (time steps) per period (default 1), ``sweeps`` update sweeps (default
    0 for E, 1 for I/R), bottleneck width ``neck·k``, ``dropout`` = 1 − keep_prob."""
    v, n_sweeps = _validate(variant, sweeps, neck)
    n = len(tuple(growth))
    widths = stage_tuple(growth, n, "growth")
    s_t = stage_tuple(stages, n, "stages")
    steps_t = stage_tuple(steps if steps is not None else (1,) * n, n, "steps")
    periods = [
        _period(p, steps_t[p], v, s_t[p], n_sweeps, widths[p], neck, dropout) for p in range(n)
    ]
    arch = {
        "name": "rkcnn",
        "family": "rkcnn",
        "variant": v,
        "stages": list(s_t),
        "growth": list(widths),
        "num_classes": num_classes,
        "in_channels": in_channels,
        "sweeps": n_sweeps,
        "steps": list(steps_t),
        "neck": neck,
        "attention": bool(attention),
        "multiscale": bool(multiscale),
        "dropout": float(dropout),
    }
    return RKFramework(
        periods,
        widths,
        in_channels=in_channels,
        num_classes=num_classes,
        attention=attention,
        multiscale=multiscale,
        dropout=dropout,
        arch=arch,
    )


_NAME = re.compile(r"^rkcnn[-_]([EIReir])[-_](\d+(?:_\d+)*)$")


def _parse(name: str) -> tuple[str, dict[str, Any]] | None:
    m = _NAME.match(name)
    if m is None:
        return None
    return "rkcnn", {
        "variant": m.group(1).upper(),
        "stages": tuple(int(x) for x in m.group(2).split("_")),
    }


register_parser(_parse)
