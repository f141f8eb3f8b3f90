"""Gradients w.r.t. the output times of a solve, from the flow identities.

For the flow y(t; t₀, y₀) of y' = f(t, y) with state-transition matrix Φ(t, t₀):

    ∂y(tᵢ)/∂tᵢ = f(tᵢ, y(tᵢ)),        ∂y(tᵢ)/∂t₀ = −Φ(tᵢ, t₀) f(t₀, y₀)   (i ≥ 1),  ∂y(t₀)/∂t₀ = 0.

The solve runs on detached times; the identities are attached by two zero-valued surrogates:
the solver starts from ``y₀ + (t₀ − t₀)·f(t₀, y₀)`` (value y₀; its y₀-gradient Φᵀ·ḡ — whatever
computes it: autograd through the steps, the per-sample loop or the adjoint — becomes
−f₀ᵀΦᵀḡ for t₀) and every output i ≥ 1 gets ``(tᵢ − tᵢ)·f(tᵢ, yᵢ)`` added (one f evaluation
per output). ``out[0]`` is y₀ itself. This is the derivative of the exact flow (up to the solver
tolerance), the same quantity torchdiffeq's adjoint returns for ``t``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["with_time_grads"]


def _f(func: Callable, t: Tensor, y: Tensor, per_sample: bool) -> Tensor:
    tv = t.detach().to(y.dtype)
    if per_sample:
        tv = tv.expand(y.shape[0])
    with torch.no_grad():
        return func(tv, y.detach())


def with_time_grads(
    solve: Callable[[Tensor, Tensor], Tensor],
    func: Callable,
    y0: Tensor,
    tt: Tensor,
    per_sample: bool = False,
) -> Tensor:
    """``solve(y0, tt)`` on detached times, with exact-flow gradients w.r.t. ``tt`` attached."""
    if not (tt.requires_grad and torch.is_grad_enabled()) or tt.shape[0] < 2:
        return solve(y0, tt.detach())
    dt = tt - tt.detach()  # zero, with gradient 1 w.r.t. every time
    if y0.is_floating_point():
        dt = dt.to(y0.dtype)
    ys = solve(y0 - dt[0] * _f(func, tt[0], y0, per_sample), tt.detach())
    corr = [dt[i] * _f(func, tt[i], ys[i], per_sample) for i in range(1, tt.shape[0])]
    return torch.cat([y0.unsqueeze(0), ys[1:] + torch.stack(corr)])
