"""torchdiffeq's ``odeint_adjoint`` and ``odeint_event`` on the drop-in's ``odeint``.

Adjoint (Chen et al. 2018, Alg. 1): the forward solve keeps no graph; backward integrates the
augmented state (v_t, y, a, v_θ) from tᵢ to tᵢ₋₁ with

    y' = f,   a' = −aᵀ∂f/∂y,   v_θ' = −aᵀ∂f/∂θ,   v_t' = −aᵀ∂f/∂t,

resetting y to the stored forward value and adding ∂L/∂yᵢ to a at every output time. Time
gradients: ∂L/∂tᵢ = ⟨∂L/∂yᵢ, f(tᵢ, yᵢ)⟩ (i ≥ 1) and ∂L/∂t₀ = v_t(t₀) (v_t starts at −Σ of those).
The backward solve is a tuple-state ``odeint`` with ``adjoint_rtol/atol/method/options``; its
default norm is max(|v_t|, norm(y), norm(a), mixed_norm(v_θ)); ``norm="seminorm"`` drops v_θ.
f may depend on neither y nor θ (then a and v_θ stay constant).

``odeint_event`` (torchdiffeq's convention): integrates from t0 until ``event_fn(t, y) = 0`` and
returns ``(event_t, solution)``; gradients reach the event time by the implicit function theorem:
with g(t*, y(t*)) = 0, dt*/dθ = −(∂g/∂y · dy/dθ) / (∂g/∂t + ∂g/∂y · f).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.functional import vjp

from odeattn.torchdiffeq._api import _check_inputs, _run, odeint
from odeattn.torchdiffeq._func import CALLBACKS, mixed_norm, unflat

__all__ = ["odeint_adjoint", "odeint_event"]


class _Augmented:
    """The augmented dynamics (v_t, y, a, *v_θ)' for the backward solve."""

    def __init__(self, func: Any, params: tuple, t_grad: bool) -> None:
        self.func, self.params, self.t_grad = func, params, t_grad
        for name in CALLBACKS:
            cb = getattr(func.base, name + "_adjoint", None)
            if cb is not None:
                setattr(self, name, cb)

    def __call__(self, t: Tensor, state: tuple) -> tuple:
        y, a = state[1], state[2]
        # an implicit backward solve differentiates this map (Newton's Jacobian): keep y's graph
        outer = torch.is_grad_enabled() and (y.requires_grad or a.requires_grad)
        with torch.enable_grad():
            t = t.detach().requires_grad_(True)
            y = y if outer and y.requires_grad else y.detach().requires_grad_(True)
            fy = self.func(t if self.t_grad else t.detach(), y)
            ins = (t, y, *self.params)
            if fy.requires_grad:
                g = torch.autograd.grad(fy, ins, -a, allow_unused=True, create_graph=outer)
            else:
                g = (None,) * len(ins)
        g = [torch.zeros_like(x) if gi is None else gi for gi, x in zip(g, ins)]
        return (g[0], fy, g[1], *g[2:])


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        f: Any,
        y0: Tensor,
        t: Tensor,
        solve: dict,
        adj: dict,
        t_grad: bool,
        *params: Tensor,
    ) -> Any:
        ctx.func, ctx.adjoint_options, ctx.adj, ctx.t_grad = f, adj["options"], adj, t_grad
        ctx.event = solve["event_fn"] is not None
        with torch.no_grad():
            ans = _run(
                f,
                y0,
                t,
                solve["rtol"],
                solve["atol"],
                solve["method"],
                solve["options"],
                solve["event_fn"],
            )
        if ctx.event:
            ctx.save_for_backward(t, ans[1], ans[0], *params)
        else:
            ctx.save_for_backward(t, ans, *params)
        return ans

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple:
        with torch.no_grad():
            if ctx.event:
                t_in, ys, event_t, *params = ctx.saved_tensors
                t, gy = torch.cat([t_in[0].reshape(-1), event_t.reshape(-1)]), grads[1]
            else:
                t, ys, *params = ctx.saved_tensors
                gy = grads[0]
            aug = _Augmented(ctx.func, tuple(params), ctx.t_grad)
            state = [torch.zeros((), dtype=ys.dtype, device=ys.device), ys[-1], gy[-1]]
            state += [torch.zeros_like(p) for p in params]
            t_vjp = torch.empty(len(t), dtype=t.dtype, device=t.device) if ctx.t_grad else None
            for i in range(len(t) - 1, 0, -1):
                if ctx.t_grad:
                    d = ctx.func(t[i], ys[i]).reshape(-1).dot(gy[i].reshape(-1))
                    state[0] = state[0] - d
                    t_vjp[i] = d
                out = odeint(
                    aug,
                    tuple(state),
                    t[i - 1 : i + 1].flip(0),
                    rtol=ctx.adj["rtol"],
                    atol=ctx.adj["atol"],
                    method=ctx.adj["method"],
                    options=ctx.adjoint_options,
                )
                state = [s[1] for s in out]
                state[1], state[2] = ys[i - 1], state[2] + gy[i - 1]
            if ctx.t_grad:
                t_vjp[0] = state[0]
                if ctx.event:
                    t_vjp = torch.cat([t_vjp[0].reshape(-1), torch.zeros_like(t_in[1:])])
        return (None, state[2], t_vjp, None, None, None, *state[3:])


def _adjoint_norm(options: dict, shapes: Any, state_norm: Callable) -> None:
    """torchdiffeq's choice of the backward solve's norm (in place)."""
    user = options.get("norm")
    if user is None or user == "seminorm":
        full = user is None

        def norm(s: tuple) -> Any:
            t, y, a, *p = s
            parts = [t.abs(), state_norm(y), state_norm(a)]
            return max(*parts, mixed_norm(p)) if full else max(parts)

        options["norm"] = norm
    elif shapes is not None:
        options["norm"] = lambda s: user(
            (s[0], *unflat(s[1], (), shapes), *unflat(s[2], (), shapes), *s[3:])
        )


def _adjoint_inputs(
    func: Any,
    method: Any,
    options: Any,
    adjoint_method: Any,
    adjoint_options: Any,
    adjoint_params: Any,
) -> tuple[Any, dict, tuple]:
    """(adjoint_method, adjoint_options, the parameters that require grad), torchdiffeq's rules."""
    if adjoint_params is None and not isinstance(func, nn.Module):
        raise ValueError(
            "func must be an instance of nn.Module to specify the adjoint parameters; "
            "alternatively they can be specified explicitly via the `adjoint_params` "
            "argument. If there are no parameters then it is allowable to set "
            "`adjoint_params=()`."
        )
    adjoint_method = method if adjoint_method is None else adjoint_method
    if adjoint_method != method and options is not None and adjoint_options is None:
        raise ValueError(
            "If `adjoint_method != method` then we cannot infer `adjoint_options` "
            "from `options`; pass `adjoint_options` as well."
        )
    if adjoint_options is None:
        adjoint_options = {k: v for k, v in (options or {}).items() if k != "norm"}
    else:
        adjoint_options = dict(adjoint_options)
    params = tuple(func.parameters()) if adjoint_params is None else tuple(adjoint_params)
    kept = tuple(p for p in params if p.requires_grad)
    if len(kept) != len(params) and callable(adjoint_options.get("norm")):
        warnings.warn(
            "An adjoint parameter was passed without requiring gradient. For efficiency "
            "this will be excluded from the adjoint pass, and will not appear as a tensor "
            "in the adjoint norm.",
            stacklevel=2,
        )
    return adjoint_method, adjoint_options, kept


def odeint_adjoint(
    func: Callable,
    y0: Any,
    t: Tensor,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    method: str | None = None,
    options: dict | None = None,
    event_fn: Any = None,
    adjoint_rtol: Any = None,
    adjoint_atol: Any = None,
    adjoint_method: str | None = None,
    adjoint_options: dict | None = None,
    adjoint_params: Any = None,
) -> Any:
    """torchdiffeq's ``odeint_adjoint``: ``odeint`` with gradients by the backsolve adjoint."""
    adjoint_method, adjoint_options, kept = _adjoint_inputs(
        func, method, options, adjoint_method, adjoint_options, adjoint_params
    )
    shapes, f, y0, t, rtol, atol, method, options, event_fn, reverse = _check_inputs(
        func, y0, t, rtol, atol, method, options, event_fn
    )
    _adjoint_norm(adjoint_options, shapes, options["norm"])
    solve = {"rtol": rtol, "atol": atol, "method": method, "options": options, "event_fn": event_fn}
    adj = {
        "rtol": rtol if adjoint_rtol is None else adjoint_rtol,
        "atol": atol if adjoint_atol is None else adjoint_atol,
        "method": adjoint_method,
        "options": adjoint_options,
    }
    ans = _Adjoint.apply(f, y0, t, solve, adj, t.requires_grad, *kept)
    sol = ans if event_fn is None else ans[1]
    if shapes is not None:
        sol = unflat(sol, (len(sol),), shapes)
    if event_fn is None:
        return sol
    event_t = ans[0].to(t)
    return (-event_t if reverse else event_t), sol


class _EventGrad(torch.autograd.Function):
    """Identity on (event_t, state) whose backward adds the implicit-function-theorem terms."""

    @staticmethod
    def forward(ctx: Any, func: Any, event_fn: Any, event_t: Tensor, state: Tensor) -> Any:
        ctx.func, ctx.event_fn = func, event_fn
        ctx.save_for_backward(event_t, state)
        return event_t.detach(), state.detach()

    @staticmethod
    def backward(ctx: Any, g_t: Tensor, g_state: Tensor) -> tuple:
        event_t, state = (x.detach().clone() for x in ctx.saved_tensors)
        f_val = ctx.func(event_t, state)
        with torch.enable_grad():
            c, (dc_dt, dc_dy) = vjp(ctx.event_fn, (event_t, state))
        total = dc_dt + torch.sum(dc_dy * f_val)  # dg/dt along the trajectory
        g_t = g_t + torch.sum(g_state * f_val)  # the final state moves with the event time
        return None, None, None, g_state + dc_dy * (-g_t / (total + 1e-12)).reshape_as(c)


def odeint_event(
    func: Callable,
    y0: Any,
    t0: Tensor,
    *,
    event_fn: Callable,
    reverse_time: bool = False,
    odeint_interface: Callable = odeint,
    **kwargs: Any,
) -> tuple[Tensor, Any]:
    """Solve from t0 until ``event_fn(t, y) = 0``; return ``(event_t, solution)`` with
    gradients through the event time (torchdiffeq's ``odeint_event``)."""
    t0r = t0.reshape(-1)
    t = torch.cat([t0r, t0r.detach() + (-1.0 if reverse_time else 1.0)])
    event_t, sol = odeint_interface(func, y0, t, event_fn=event_fn, **kwargs)
    shapes, f, _, t, _, _, _, _, ev, _ = _check_inputs(func, y0, t, 0.0, 0.0, None, None, event_fn)
    state = torch.cat([s[-1].reshape(-1) for s in sol]) if shapes is not None else sol[-1]
    if reverse_time:
        event_t = -event_t
    event_t, state = _EventGrad.apply(f, ev, event_t, state)
    if reverse_time:
        event_t = -event_t
    if shapes is not None:
        parts = unflat(state, (), shapes)
        return event_t, tuple(torch.cat([s[:-1], p[None]]) for s, p in zip(sol, parts))
    return event_t, torch.cat([sol[:-1], state[None]])
