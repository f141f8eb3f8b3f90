"""The DIA recurrent processors: one cell per stage whose hidden state is the step Δt.

DIA-LSTM (DIANet; "Layer-wise shared attention network on dynamical system perspective", Sec.
4.2, Fig. 5 Middle; gbup-group/DIANet). Input y = GAP(Φ) (B, C) (any channel descriptors, flattened);
hidden and cell size C. Each of the two linear maps of an LSTM is a bottleneck "small cell"

    W(v) = Linear(n → n//r) → ReLU → Linear(n//r → 4C)        (biases on; r = 4 on CIFAR)
    [i, f, g, o] = W_ih(y) + W_hh(h_{t−1});  i, f, o = σ(·), g = tanh(·)
    c_t = f ⊙ c_{t−1} + i ⊙ g,      h_t = o ⊙ gate(c_t)        (gate = σ: sigmoid replaces tanh)

and h_t ∈ (0, 1) is the step itself (no further FC or sigmoid). 2 · (5C²/r + C/r + 4C) parameters
with integer C/r (10,784 + 42,048 + 166,016 = 218,848 on ResNet-164 at r = 4). h_0 = c_0 = 0 at the
first block of every stage (index 0); (h, c) are carried block to block otherwise.

DIA-LSTM (Light) (Fig. 5 Right, "IE replaces part of the linear transformations"; no public code):
our reading keeps the input small cell and replaces the four hidden→gate linear maps by IE maps,
W_hh(h) = w ⊙ [h, h, h, h] + b (8C parameters, w = b = 0 at init so the recurrent path opens as it
learns). With r = 20 (the reduction the group's EAN code uses for DIA) this gives 25,557 extra
parameters on ResNet-164: 1.73M / 1.75M on CIFAR-10 / CIFAR-100, the DIA paper's Table 4 values
(r = 16 would give 1.74M / 1.76M).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._gate import GATES

__all__ = ["DIACell"]


def _small_cell(n_in: int, channels: int, reduction: int) -> nn.Sequential:
    hidden = n_in // reduction
    if hidden < 1:
        raise ValueError(
            f"`reduction` must be <= {n_in} for the DIA cell, but got reduction="
            f"{reduction} (n // r = 0 hidden units); lower `reduction`"
        )
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, 4 * channels))


class DIACell(nn.Module):
    """Modified LSTM cell of DIA; keeps (h, c) between calls of one stage."""

    bounded = True

    def __init__(self, channels: int, k: int, reduction: int, *, light: bool, gate: str) -> None:
        super().__init__()
        self.channels, self.light = channels, light
        self.gate = GATES[gate]
        self.ih = _small_cell(channels * k, channels, reduction)
        if light:
            self.hh_weight = nn.Parameter(torch.zeros(4 * channels))
            self.hh_bias = nn.Parameter(torch.zeros(4 * channels))
        else:
            self.hh = _small_cell(channels, channels, reduction)
        self._state: tuple[Tensor, Tensor] | None = None

    def reset(self) -> None:
        """Drop the carried (h, c) (and the graph they hold)."""
        self._state = None

    def _previous(self, y: Tensor, index: int) -> tuple[Tensor, Tensor]:
        if index == 0:
            zeros = y.new_zeros(y.shape[0], self.channels)
            return zeros, zeros
        state = self._state
        if state is None or state[0].shape[0] != y.shape[0]:
            raise RuntimeError(
                f"stage-shared DIA adaptor called with index={index} before index 0 of this "
                "forward pass: call the blocks of a stage in order, the first with index=0"
            )
        return state

    def forward(self, d: Tensor, index: int) -> Tensor:  # (B, C, K) -> (B, C, 1, 1)
        y = d.flatten(1)  # (B, C·K)
        h, c = self._previous(y, index)
        rec = (
            torch.addcmul(self.hh_bias, h.repeat(1, 4), self.hh_weight)
            if self.light
            else self.hh(h)
        )
        gates = self.ih(y) + rec  # (B, 4C) in the order i, f, g, o
        i, f, _, o = torch.sigmoid(gates).chunk(4, dim=1)  # one call for the three σ gates
        g = torch.tanh(gates[:, 2 * self.channels : 3 * self.channels])
        c = torch.addcmul(i * g, f, c)
        h = o * self.gate(c)
        self._state = (h, c)
        return h[:, :, None, None]
