"""Gates, part ③ of an adaptor: bounded maps from logits to a step Δt ∈ (0, 1).

    sigmoid       σ(z) = 1 / (1 + e^{−z})                      (SE, ECA, CBAM, SRM, StepNet, DIA)
    hard_sigmoid  ε + (1 − 2ε) · clip(z / 6 + ½, 0, 1), ε = 1e-3  (MobileNetV3's map, squeezed so
                  Δt stays strictly inside (0, 1); zero gradient outside |z| ≤ 3)
    softsign      ½ (1 + z / (1 + |z|))                       (algebraic tails)
    tanh          ½ (1 + tanh z), evaluated as σ(2z)

Both tails are evaluated without cancellation, so small steps keep their relative precision.
In float32 σ(z) rounds to exactly 1.0 for z ≳ 17 (σ(2z) for z ≳ 9): the upper end of the open
interval holds mathematically, not for saturated logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["GATES", "HARD_SIGMOID_EPS"]

HARD_SIGMOID_EPS = 1e-3


def _hard_sigmoid(z: Tensor) -> Tensor:
    return HARD_SIGMOID_EPS + (1.0 - 2.0 * HARD_SIGMOID_EPS) * F.hardsigmoid(z)


def _softsign(z: Tensor) -> Tensor:
    # ½(1 + z/(1+|z|)) written without cancellation: 1/(2(1−z)) for z < 0, (½+z)/(1+z) otherwise
    return torch.where(z < 0, 0.5 / (1.0 - z), (0.5 + z) / (1.0 + z.clamp_min(0)))


def _tanh(z: Tensor) -> Tensor:
    return torch.sigmoid(2.0 * z)  # = ½(1 + tanh z), without the cancellation near 0


GATES: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "softsign": _softsign,
    "tanh": _tanh,
}
