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

from collections.abc import Sequence
from typing import Any

from torch import nn

from odeattn._errors import must
from odeattn.compile import compile_step
from odeattn.models._common import method_names, stage_tuple
from odeattn.models._framework import RKFramework
from odeattn.models._odeblock import MnistResBranch, ODEBlock, ODEFunc, ODENet
from odeattn.models._registry import register_variant
from odeattn.models.blocks import BasicBranch, Stage

__all__ = ["ODEBlock", "ODEFunc", "ODENet"]

_SOLVERS = ("torchdiffeq", "odeattn")


def torchdiffeq_methods() -> tuple[str, ...]:
    """The method names the installed torchdiffeq accepts. torchdiffeq has no public list: this is
    the one read of its private ``torchdiffeq._impl.odeint.SOLVERS`` (a test fails loudly if a
    release moves it)."""
    from torchdiffeq._impl.odeint import SOLVERS  # optional baseline solver: imported on use

    return tuple(SOLVERS)


def _check_solver(solver: str, method: str, tol: float, step_size: float | None) -> None:
    if solver not in _SOLVERS:
        raise must("solver", "be 'torchdiffeq' or 'odeattn'", solver, valid=_SOLVERS)
    if solver == "torchdiffeq":
        SOLVERS = torchdiffeq_methods()
        if method not in SOLVERS:
            raise must(
                "method",
                f"be a torchdiffeq method for solver='torchdiffeq' ({', '.join(sorted(SOLVERS))})",
                method,
                valid=SOLVERS,
            )
    else:
        method_names(method, 1)
    if not float(tol) > 0:
        raise ValueError(f"`tol` must be > 0, but got tol={tol!r}")
    if step_size is not None and not float(step_size) > 0:
        raise ValueError(f"`step_size` must be > 0 or None, but got step_size={step_size!r}")


def _ode_arch(
    kind: str, method: str, tol: float, adjoint: bool, solver: str, step_size: float | None
) -> dict[str, Any]:
    """Checks the solver options; returns them as the model's architecture entries."""
    _check_solver(solver, method, tol, step_size)
    arch: dict[str, Any] = {"method": method, "tol": tol, "solver": solver, "step_size": step_size}
    if kind == "odenet":
        arch["adjoint"] = bool(adjoint)
    return arch


def _ode_feature(kind: str, width: int, stage_id: int, arch: dict[str, Any]) -> ODEBlock:
    """One ODE block (odenet / rknet / rknn; rknn's f has no time input) at ``stage_id``."""
    func = ODEFunc(width, time_input=kind != "rknn")
    block = ODEBlock(
        func,
        method=arch["method"],
        tol=arch["tol"],
        adjoint=arch.get("adjoint", False),
        solver=arch["solver"],
        step_size=arch["step_size"],
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
        arch_extra = _ode_arch(kind, method, tol, adjoint, solver, step_size)
        feature = _ode_feature(kind, w, 0, arch_extra)
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
    if kind == "resnet":
        m = method_names(method, 1)[0]
        periods = [_res_stage([BasicBranch(k, k, preact=True)], m, p) for p, k in enumerate(widths)]
        extra: dict[str, Any] = {"method": m}
    else:
        extra = _ode_arch(kind, method, tol, adjoint, solver, step_size)
        periods = [Stage([_ode_feature(kind, k, p, extra)]) for p, k in enumerate(widths)]
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
