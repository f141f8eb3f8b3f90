"""Fixed-grid solves: each output interval ``[t_{j-1}, t_j]`` in ``n`` equal steps of
``(t_j − t_{j−1}) / n`` (``n`` given, or ``ceil(span / h)`` for a largest step ``h``), so output times
are hit exactly; every step is ``odeattn.compile.Stepper.step``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from odeattn.solve._adaptive import Counted
from odeattn.solve._stats import SolveStats

__all__ = ["solve_fixed"]


def solve_fixed(
    stepper: Any,
    f: Counted,
    y0: Tensor,
    tt: Tensor,
    times: list[float] | None,
    grid: float | int,
    fsal: bool,
    stats: SolveStats,
) -> Tensor:
    """Equal steps per output interval: ``grid`` is the largest step (float) or the number of
    steps (int). The step is a Python float (exact in float64) unless ``t`` requires grad or
    was not read; all stage times of an interval come from one tensor expression
    (``t_{j-1} + (i + c) h``, unbound once), so a step creates no 0-d tensors of its own."""
    ys = [y0]
    y, k1 = y0, None
    explicit = stepper.plan.explicit
    cs = stepper.cs if explicit else (0.0,)
    nc = len(cs)
    for j in range(1, tt.shape[0]):
        if isinstance(grid, int):
            n = grid
        else:
            n = max(1, math.ceil(abs(times[j] - times[j - 1]) / grid * (1 - 1e-12)))
        if times is None or tt.requires_grad or not explicit:
            h: Tensor | float = (tt[j] - tt[j - 1]) / n  # 0-d, differentiable w.r.t. t
        else:
            h = (times[j] - times[j - 1]) / n
        ic = torch.arange(n, dtype=tt.dtype, device=tt.device).unsqueeze(1)
        ic = ic + torch.tensor(cs, dtype=tt.dtype, device=tt.device) if nc > 1 else ic
        tn = ic.mul_(h).add_(tt[j - 1]).reshape(-1).to(y0.dtype).unbind(0)  # f's time dtype
        for i in range(n):
            row = tn[i * nc : (i + 1) * nc]
            y, _, ks = stepper.step(f, row[0], y, h, k1=k1, nodes=row if explicit else None)
            k1 = ks[-1] if fsal else None
        stats.accepted += n
        ys.append(y)
    return torch.stack(ys)
