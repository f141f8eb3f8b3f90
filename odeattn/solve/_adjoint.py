"""Backsolve adjoint for ``odeint`` (Chen et al. 2018, "Neural ODEs", Alg. 1; Pontryagin).

Forward: the solve runs without building a graph (memory O(1) in the number of steps).
Backward: from t_N down to t_0 integrate the augmented system backwards in time

    y' = f(t, y),   a' = −aᵀ ∂f/∂y,   g' = −aᵀ ∂f/∂θ,     a(t_N) = ∂L/∂y(t_N), g(t_N) = 0,

resetting y to the stored forward value at every output time and adding ∂L/∂y(t_i) to a there.
Then ∂L/∂y0 = a(t_0) and ∂L/∂θ = g(t_0). The backward solves use the same method, tolerances
and options as the forward one. The gradient is that of the exact ODE flow, up to the solver
tolerance (not the exact gradient of the discrete forward solve: use plain autograd for that).
``func`` must be an ``nn.Module`` (its parameters are θ); no gradient w.r.t. ``t``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["odeint_adjoint"]


def _augmented(func: nn.Module, params: list[Tensor], n: int, shape: torch.Size) -> Callable:
    def aug(t: Tensor, z: Tensor) -> Tensor:  # z = [y | a | g] flattened, time runs backwards
        y, a = z[:n].reshape(shape), z[n : 2 * n].reshape(shape)
        with torch.enable_grad():
            y = y.detach().requires_grad_()
            fy = func(t, y)
            # f may depend on neither y nor θ (e.g. f = f(t)): then a' = 0 and g' = 0
            grads = (
                torch.autograd.grad(fy, [y, *params], -a, allow_unused=True)
                if fy.requires_grad
                else (None,) * (1 + len(params))
            )
        parts = [fy.reshape(-1)] + [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, [y, *params])
        ]
        return torch.cat(parts)

    return aug


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, solve: Callable, func: nn.Module, y0: Tensor, t: Tensor, *params: Tensor
    ) -> Tensor:
        with torch.no_grad():
            ys = solve(func, y0, t)
        ctx.solve, ctx.func = solve, func
        ctx.save_for_backward(t, ys, *params)
        return ys

    @staticmethod
    def backward(ctx, grad_ys: Tensor) -> tuple[Any, ...]:
        t, ys, *params = ctx.saved_tensors
        shape, n = ys.shape[1:], ys[0].numel()
        aug = _augmented(ctx.func, params, n, shape)
        a = grad_ys[-1].reshape(-1)
        g = torch.zeros(sum(p.numel() for p in params), dtype=ys.dtype, device=ys.device)
        for i in range(len(t) - 1, 0, -1):
            z = torch.cat([ys[i].reshape(-1), a, g])
            z = ctx.solve(aug, z, t[i - 1 : i + 1].flip(0))[-1]
            a = z[n : 2 * n] + grad_ys[i - 1].reshape(-1)
            g = z[2 * n :]
        grads, k = [], 0
        for p in params:
            grads.append(g[k : k + p.numel()].reshape(p.shape))
            k += p.numel()
        return (None, None, a.reshape(shape), None, *grads)


def odeint_adjoint(solve: Callable, func: Any, y0: Tensor, t: Tensor) -> Tensor:
    """``solve(func, y0, t)`` with gradients by the backsolve adjoint (see the module doc)."""
    if not isinstance(func, nn.Module):
        raise ValueError(
            "options['adjoint'] needs `func` to be an nn.Module (its parameters get "
            f"gradients), but got {type(func).__name__}; wrap it in a Module"
        )
    params = [p for p in func.parameters() if p.requires_grad]
    return _Adjoint.apply(solve, func, y0, t, *params)
