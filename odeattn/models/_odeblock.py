"""The modules of the ODE-Net family (Chen et al. 2018, torchdiffeq's ``odenet_mnist.py``).

    ODE block   y = u(T), du/dt = f(t, u), u(0) = x, integrated over [0, T] by ``odeint``
    f           GN-ReLU-ConcatConv3x3-GN-ReLU-ConcatConv3x3-GN (ConcatConv prepends a channel = t)
    MNIST frame conv3x3(1→w, no pad) GN ReLU conv4x4/2 GN ReLU conv4x4/2 -> feature -> GN ReLU GAP
                Linear (w = 64, GN = GroupNorm(min(32, w), w))

The ODE block is Recordable and emits ``(x_t=x, y=u(T), phi=(y − x)/T, dt=T)`` — the block seen
as one step of length T, so NSI = ‖(y − x)/T‖/‖x‖. The factories are in :mod:`odeattn.models.odenet`.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from odeattn import solve
from odeattn.compile import Recordable

__all__ = ["ConcatConv2d", "MnistResBranch", "ODEBlock", "ODEFunc", "ODENet", "gn"]


def gn(channels: int) -> nn.GroupNorm:
    """torchdiffeq's ``GroupNorm(min(32, C), C)``; when 32 does not divide C (k = 120 in RKCNN's
    CIFAR frame) the largest divisor of C below 32 is used (30 for 120)."""
    groups = next(g for g in range(min(32, channels), 0, -1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class ConcatConv2d(nn.Conv2d):
    """3x3 conv over ``concat[t·1, x]`` (time as an extra input channel) or over x alone."""

    def __init__(self, cin: int, cout: int, *, time_input: bool):
        super().__init__(cin + int(time_input), cout, 3, padding=1, bias=True)
        self.time_input = time_input

    def forward(self, t: Tensor, x: Tensor) -> Tensor:  # (B, C, H, W)
        if self.time_input:
            tt = torch.ones_like(x[:, :1]) * t
            x = torch.cat([tt, x], dim=1)  # (B, C+1, H, W)
        return super().forward(x)


class ODEFunc(nn.Module):
    """f(t, u) of torchdiffeq's ``odenet_mnist.py``; counts evaluations in ``nfe``."""

    def __init__(self, dim: int, *, time_input: bool = True):
        super().__init__()
        self.norm1 = gn(dim)
        self.conv1 = ConcatConv2d(dim, dim, time_input=time_input)
        self.norm2 = gn(dim)
        self.conv2 = ConcatConv2d(dim, dim, time_input=time_input)
        self.norm3 = gn(dim)
        self.nfe = 0

    def forward(self, t: Tensor, x: Tensor) -> Tensor:  # (B, C, H, W) -> same
        self.nfe += 1
        out = self.conv1(t, self.norm1(x).relu())
        out = self.conv2(t, self.norm2(out).relu())
        return self.norm3(out)


class ODEBlock(nn.Module, Recordable):
    """``y = odeint(f, x, [0, T])[-1]``; emits (x, y, (y − x)/T, T) to an attached recorder."""

    def __init__(
        self,
        func: ODEFunc,
        *,
        method: str,
        tol: float,
        adjoint: bool,
        solver: str,
        step_size: float | None = None,
        T: float = 1.0,
    ):
        super().__init__()
        self.func = func
        self.method, self.tol, self.adjoint, self.solver = method, tol, adjoint, solver
        self.step_size, self.T = step_size, float(T)

    def _odeint(self) -> Any:
        if self.solver == "torchdiffeq":
            import torchdiffeq

            return torchdiffeq.odeint_adjoint if self.adjoint else torchdiffeq.odeint

        return solve.odeint  # its adjoint is options={"adjoint": True} (see forward)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> same
        t = torch.tensor([0.0, self.T], dtype=x.dtype, device=x.device)
        options = {"step_size": self.step_size} if self.step_size is not None else None
        if self.adjoint and self.solver == "odeattn":
            options = {**(options or {}), "adjoint": True}
        y = self._odeint()(
            self.func, x, t, rtol=self.tol, atol=self.tol, method=self.method, options=options
        )[-1]
        self._emit(x, y, (y - x) / self.T, self.T)
        return y


class MnistResBranch(nn.Module):
    """Φ of torchdiffeq's ResBlock: GN-ReLU-conv3x3-GN-ReLU-conv3x3 (no biases)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm1 = gn(dim)
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.norm2 = gn(dim)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> same
        return self.conv2(self.norm2(self.conv1(self.norm1(x).relu())).relu())


class ODENet(nn.Module):
    """MNIST frame: downsampling -> feature (ODE block or residual stage) -> head."""

    def __init__(
        self,
        feature: nn.Module,
        *,
        width: int,
        in_channels: int,
        num_classes: int,
        arch: dict[str, Any],
    ):
        super().__init__()
        w = width
        self.downsampling = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 1),
            gn(w),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 4, 2, 1),
            gn(w),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 4, 2, 1),
        )
        self.feature = feature
        self.head = nn.Sequential(
            gn(w),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(w, num_classes),
        )
        self._arch = arch

    def forward(self, x: Tensor) -> Tensor:  # (B, 1, 28, 28) -> (B, num_classes)
        return self.head(self.feature(self.downsampling(x)))

    def architecture(self) -> dict[str, Any]:
        """Plain dict; ``create_model(**arch)`` rebuilds this network."""
        return copy.deepcopy(self._arch)
