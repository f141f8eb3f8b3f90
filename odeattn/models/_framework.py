"""RKCNN's three-period frame (Zhu, Chang & Fu 2023, Sec. 4.1.2), shared by RKCNN and the
"transplanted" baselines (pre-act ResNet, RKNN, RK-Net, ODE-Net) of its Table 3.

    preprocessor  conv3x3(in -> k1), no BN / ReLU
    period i      r_i time-step blocks at width k_i
    transition    BN-ReLU-conv1x1(k_i -> k_{i+1}) [dropout] -> SE-like attention (reduction 2)
                  -> AvgPool 2x2 (between periods)
    postprocessor multiscale: every period's final state -> BN-ReLU-GAP, concatenated -> Linear
                  (only the last period without multiscale)

BN is ``BatchNorm2d(eps=1e-3, momentum=0.01)``; init Kaiming-normal (fan-in, ReLU) convs, BN
(1, 0), Xavier-uniform Linear with zero bias — the published ``build_RKCNN`` conventions.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["RKFramework", "rk_norm"]


def rk_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class TransitionAttention(nn.Module):
    """SE-like gate of the attentional transition: GAP -> FC(C→C/2) -> ReLU -> FC(C/2→C) -> σ."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // 2)
        self.fc2 = nn.Linear(channels // 2, channels)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        w = torch.sigmoid(self.fc2(self.fc1(x.mean((2, 3))).relu()))  # (B, C)
        return x * w[:, :, None, None]


class Transition(nn.Module):
    """BN-ReLU-conv1x1 [dropout] [attention] AvgPool2x2."""

    def __init__(self, cin: int, cout: int, *, attention: bool, dropout: float):
        super().__init__()
        self.bn = rk_norm(cin)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.attention = TransitionAttention(cout) if attention else nn.Identity()
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, Cout, H/2, W/2)
        return self.pool(self.attention(self.drop(self.conv(self.bn(x).relu()))))


class RKFramework(nn.Module):
    """preprocessor -> (period -> transition)* -> multiscale postprocessor.

    ``periods[i]`` is a module mapping (B, k_i, H, W) to the same shape (a run of time steps).
    """

    def __init__(
        self,
        periods: Sequence[nn.Module],
        widths: Sequence[int],
        *,
        in_channels: int,
        num_classes: int,
        attention: bool = True,
        multiscale: bool = True,
        dropout: float = 0.0,
        arch: dict[str, Any],
    ):
        super().__init__()
        self.pre = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.periods = nn.ModuleList(periods)
        self.transitions = nn.ModuleList(
            Transition(widths[i], widths[i + 1], attention=attention, dropout=dropout)
            for i in range(len(widths) - 1)
        )
        self.multiscale = bool(multiscale)
        pooled = list(widths) if multiscale else [widths[-1]]
        self.post_norms = nn.ModuleList(rk_norm(c) for c in pooled)
        self.fc = nn.Linear(sum(pooled), num_classes)
        self._arch = arch
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) -> (B, num_classes)
        x = self.pre(x)
        feats = []
        last = len(self.periods) - 1
        for i, period in enumerate(self.periods):
            x = period(x)
            if self.multiscale or i == last:
                feats.append(self.post_norms[len(feats)](x).relu().mean((2, 3)))  # (B, k_i)
            if i < last:
                x = self.transitions[i](x)
        return self.fc(torch.cat(feats, dim=1))

    def architecture(self) -> dict[str, Any]:
        """Plain dict; ``create_model(**arch)`` rebuilds this network."""
        return copy.deepcopy(self._arch)
