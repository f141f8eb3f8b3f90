"""IEBN: instance-enhancement batch normalisation (Liang et al., AAAI 2020; gbup-group/IEBN).

    IEBN(x) = x̂ · (γ ⊙ σ(w ⊙ GAP(x) + b)) + β,    x̂ = BN(x) without affine

per channel, with the GAP taken on the raw (un-normalised) input, per sample. The IE gate
multiplies the scale γ only, not β. Init γ = 1, β = 0, w = 0, b = −1, so the initial effective
scale is σ(−1) ≈ 0.269. 4C parameters (2C more than BatchNorm). Accepts (B, C, H, W) or (B, C)
(then GAP(x) = x: StepNet applies IEBN to pooled descriptors).

The class subclasses ``_BatchNorm`` rather than ``nn.BatchNorm2d`` on purpose (as the reference
code): a model's ``isinstance(m, nn.BatchNorm2d)`` init loop leaves its IE init alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._extract import gap

__all__ = ["IEBatchNorm2d"]


class IEBatchNorm2d(_BatchNorm):
    """BatchNorm whose scale is gated per sample by the IE operator σ(w ⊙ GAP(x) + b)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps, momentum, affine=False, track_running_stats=True)
        self.gamma = nn.Parameter(torch.ones(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))
        self.ie_weight = nn.Parameter(torch.zeros(num_features))
        self.ie_bias = nn.Parameter(torch.full((num_features,), -1.0))

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() not in (2, 4):
            raise ValueError(
                f"IEBatchNorm2d expects (B, C, H, W) or (B, C) input, got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> Tensor:
        pooled = gap(x) if x.dim() == 4 else x  # (B, C), raw input
        gate = torch.sigmoid(pooled * self.ie_weight + self.ie_bias) * self.gamma  # (B, C)
        beta = self.beta
        if x.dim() == 4:
            gate, beta = gate[:, :, None, None], beta[:, None, None]
        return super().forward(x) * gate + beta
