"""ODE-Net, RK-Net, RKNN and the ResNet baseline of torchdiffeq's MNIST example (Chen et al. 2018),
and their CIFAR-size versions transplanted into RKCNN's frame (Zhu et al. 2023, Sec. 4.1.2).

    ODE block   y = u(T), du/dt = f(t, u), u(0) = x, integrated over [0, T] (T = 1) by ``odeint``
    f           GN-ReLU-ConcatConv3x3-GN-ReLU-ConcatConv3x3-GN (ConcatConv prepends a channel = t)
    ODE-Net     gradients by the adjoint method; RK-Net: backprop through the solver
                (``adjoint=False``); RKNN: time-invariant f (no t channel)
    ResNet      6 pre-act blocks GN-ReLU-conv-GN-ReLU-conv + identity (compiled Euler steps)

MNIST frame: conv3x3(1→w, no pad) GN ReLU conv4x4/2 GN ReLU conv4x4/2 -> feature -> GN ReLU GAP
Linear (w = 64, GN = GroupNorm(min(32, w), w)). ``solver`` chooses torchdiffeq's ``odeint`` or
``odeattn.solve.odeint``. The ODE block is Recordable and emits ``(x_t=x, y=u(T),
phi=(y − x)/T, dt=T)`` — the block seen as one step of length T, so NSI = ‖(y − x)/T‖/‖x‖.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from odeattn import solve
from odeattn.compile import compile_step
from odeattn.compile._record import Recordable
from odeattn.models._common import method_names, stage_tuple
from odeattn.models._framework import RKFramework
from odeattn.models._registry import register_variant
from odeattn.models.blocks import BasicBranch, Stage

__all__ = ["ODEBlock", "ODEFunc", "ODENet"]

_SOLVERS = ("torchdiffeq", "odeattn")


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


def _check_solver(solver: str, method: str, tol: float, step_size: float | None) -> None:
    if solver not in _SOLVERS:
        raise ValueError(f"`solver` must be 'torchdiffeq' or 'odeattn', but got solver={solver!r}")
    if solver == "torchdiffeq":
        from torchdiffeq._impl.odeint import SOLVERS

        if method not in SOLVERS:
            raise ValueError(
                f"`method` must be a torchdiffeq method for solver='torchdiffeq' "
                f"({', '.join(sorted(SOLVERS))}), but got method={method!r}"
            )
    else:
        method_names(method, 1)
    if not float(tol) > 0:
        raise ValueError(f"`tol` must be > 0, but got tol={tol!r}")
    if step_size is not None and not float(step_size) > 0:
        raise ValueError(f"`step_size` must be > 0 or None, but got step_size={step_size!r}")


def _ode_feature(
    kind: str,
    width: int,
    stage_id: int,
    *,
    method: str,
    tol: float,
    adjoint: bool,
    solver: str,
    step_size: float | None,
) -> nn.Module:
    """The time-step module: an ODE block (odenet / rknet / rknn) or a compiled Euler block."""
    if kind == "resnet":
        raise AssertionError("resnet features are built by the callers")
    func = ODEFunc(width, time_input=kind != "rknn")
    block = ODEBlock(
        func, method=method, tol=tol, adjoint=adjoint, solver=solver, step_size=step_size
    )
    block.set_position(stage_id, 0)
    return block


def _res_stage(branches: Sequence[nn.Module], method: str, stage_id: int) -> Stage:

    blocks = [compile_step(method, b).set_position(stage_id, i) for i, b in enumerate(branches)]
    return Stage(blocks)


def odenet_mnist(
    *,
    name: str,
    kind: str,
    method: str = "dopri5",
    tol: float = 1e-3,
    adjoint: bool = False,
    solver: str = "torchdiffeq",
    step_size: float | None = None,
    width: int = 64,
    blocks: int = 6,
    num_classes: int = 10,
    in_channels: int = 1,
) -> ODENet:
    """torchdiffeq MNIST example: ``kind`` in odenet / rknet / rknn (ODE block) or resnet
    (``blocks`` compiled pre-act residual blocks; ``method`` is then a tableau name)."""
    w = stage_tuple((width,), 1, "width")[0]
    if kind == "resnet":
        m = method_names(method, 1)[0]
        feature = _res_stage(
            [MnistResBranch(w) for _ in range(stage_tuple((blocks,), 1, "blocks")[0])], m, 0
        )
        arch_extra: dict[str, Any] = {"method": m, "blocks": blocks}
    else:
        _check_solver(solver, method, tol, step_size)
        feature = _ode_feature(
            kind, w, 0, method=method, tol=tol, adjoint=adjoint, solver=solver, step_size=step_size
        )
        arch_extra = {"method": method, "tol": tol, "solver": solver, "step_size": step_size}
        if kind == "odenet":
            arch_extra["adjoint"] = bool(adjoint)
    arch = {
        "name": name,
        "family": "odenet",
        "width": w,
        "num_classes": num_classes,
        "in_channels": in_channels,
        **arch_extra,
    }
    return ODENet(feature, width=w, in_channels=in_channels, num_classes=num_classes, arch=arch)


def odenet_cifar(
    *,
    name: str,
    kind: str,
    method: str = "rk4",
    tol: float = 1e-3,
    adjoint: bool = False,
    solver: str = "torchdiffeq",
    step_size: float | None = 1.0,
    growth: Sequence[int] = (120, 120, 120),
    num_classes: int = 10,
    in_channels: int = 3,
    attention: bool = True,
    multiscale: bool = True,
) -> RKFramework:
    """RKCNN Table 3 baselines: one time step per period of RKCNN's frame (``growth`` = k_i)."""
    widths = stage_tuple(growth, len(tuple(growth)), "growth")
    periods = []
    if kind == "resnet":
        m = method_names(method, 1)[0]
        for p, k in enumerate(widths):
            periods.append(_res_stage([BasicBranch(k, k, preact=True)], m, p))
        extra: dict[str, Any] = {"method": m}
    else:
        _check_solver(solver, method, tol, step_size)
        for p, k in enumerate(widths):
            periods.append(
                Stage(
                    [
                        _ode_feature(
                            kind,
                            k,
                            p,
                            method=method,
                            tol=tol,
                            adjoint=adjoint,
                            solver=solver,
                            step_size=step_size,
                        )
                    ]
                )
            )
        extra = {"method": method, "tol": tol, "solver": solver, "step_size": step_size}
        if kind == "odenet":
            extra["adjoint"] = bool(adjoint)
    arch = {
        "name": name,
        "family": "odenet",
        "growth": list(widths),
        "num_classes": num_classes,
        "in_channels": in_channels,
        "attention": bool(attention),
        "multiscale": bool(multiscale),
        **extra,
    }
    return RKFramework(
        periods,
        widths,
        in_channels=in_channels,
        num_classes=num_classes,
        attention=attention,
        multiscale=multiscale,
        arch=arch,
    )


_ODE_ONLY = ("tol", "solver", "step_size", "adjoint")
_v = register_variant
_v(
    odenet_mnist,
    "odenet_mnist",
    family="odenet",
    hidden=("kind", "blocks"),
    kind="odenet",
    adjoint=True,
)
_v(odenet_mnist, "rknet_mnist", family="odenet", hidden=("kind", "blocks", "adjoint"), kind="rknet")
_v(odenet_mnist, "rknn_mnist", family="odenet", hidden=("kind", "blocks", "adjoint"), kind="rknn")
_v(
    odenet_mnist,
    "resnet_mnist",
    family="odenet",
    hidden=("kind", *_ODE_ONLY),
    kind="resnet",
    method="euler",
)
_v(
    odenet_cifar,
    "odenet_cifar",
    family="odenet",
    hidden=("kind",),
    kind="odenet",
    adjoint=True,
    method="dopri5",
    step_size=None,
)
_v(odenet_cifar, "rknet_cifar", family="odenet", hidden=("kind", "adjoint"), kind="rknet")
_v(odenet_cifar, "rknn_cifar", family="odenet", hidden=("kind", "adjoint"), kind="rknn")
_v(
    odenet_cifar,
    "resnet_cifar",
    family="odenet",
    hidden=("kind", *_ODE_ONLY),
    kind="resnet",
    method="euler",
)
