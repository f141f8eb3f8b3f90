"""torchdiffeq's calling convention (input normalisation, odeint, odeint_dense); see
``odeattn.torchdiffeq``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from odeattn.torchdiffeq._func import PFunc, flat, mixed_norm, rms_norm, unflat
from odeattn.torchdiffeq._solvers import SOLVERS, make_solver

__all__ = ["odeint", "odeint_dense"]


def _tuple_tol(tol: Any, shapes: list) -> Any:
    if not isinstance(tol, (tuple, list)):
        return tol
    if len(tol) != len(shapes):
        raise ValueError(
            f"a tuple `rtol`/`atol` must have one entry per state tensor "
            f"({len(shapes)}), but got {len(tol)}"
        )
    return torch.cat([torch.as_tensor(x).expand(s.numel()) for x, s in zip(tol, shapes)])


def _check_t(t: Any) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"`t` must be a torch.Tensor, but got {type(t).__name__}")
    if not torch.is_floating_point(t):
        raise TypeError(f"`t` must be a floating point Tensor but is a {t.type()}")
    if t.ndimension() != 1:
        raise ValueError(f"`t` must be one dimensional, but got shape {tuple(t.shape)}")
    d = t[1:] > t[:-1]
    if not (d.all() or (~d).all()) or (len(t) > 1 and bool((t[1:] == t[:-1]).any())):
        raise ValueError("`t` must be strictly increasing or decreasing")


def _combine_events(event_fn: Callable, t0: Tensor, y0: Any) -> Callable:
    """All event functions made positive at t0 and combined by their min (one sign change)."""
    with torch.no_grad():
        s0 = torch.sign(event_fn(t0, y0))
    return lambda t, y: torch.min(event_fn(t, y) * s0)


def _norm_for(options: dict, shapes: list | None) -> None:
    if shapes is None:
        options.setdefault("norm", rms_norm)
        return
    user = options.get("norm", mixed_norm)
    options["norm"] = lambda v: user(unflat(v, (), shapes))


def _reverse_options(options: dict) -> None:
    gc = options.get("grid_constructor")
    if gc is not None:
        options["grid_constructor"] = lambda func, y0, t: -gc(func, y0, -t)
    for key in ("step_t", "jump_t"):
        if isinstance(options.get(key), Tensor):
            options[key] = -options[key]


def _flatten(y0: Any, rtol: Any, atol: Any, event_fn: Any) -> tuple:
    """A tuple state as one vector: (shapes | None, y0, rtol, atol, event_fn)."""
    if isinstance(y0, Tensor):
        return None, y0, rtol, atol, event_fn
    if not isinstance(y0, tuple):
        raise TypeError(
            f"`y0` must be a torch.Tensor or a tuple of them, but got {type(y0).__name__}"
        )
    shapes = [y.shape for y in y0]
    if event_fn is not None:
        ev = event_fn
        event_fn = lambda s, y: ev(s, unflat(y, (), shapes))  # noqa: E731
    return shapes, flat(y0), _tuple_tol(rtol, shapes), _tuple_tol(atol, shapes), event_fn


def _check_inputs(
    func: Callable,
    y0: Any,
    t: Tensor,
    rtol: Any,
    atol: Any,
    method: Any,
    options: Any,
    event_fn: Any,
) -> tuple:
    """torchdiffeq's input normalisation: (shapes, f, y0, t, rtol, atol, method, options,
    event_fn, reversed) with a flat state and increasing time."""
    if event_fn is not None:
        if len(t) != 2:
            raise ValueError(
                f"We require len(t) == 2 when in event handling mode, but got len(t)={len(t)}."
            )
        event_fn = _combine_events(event_fn, t[0], y0)
    shapes, y0, rtol, atol, event_fn = _flatten(y0, rtol, atol, event_fn)
    options = {} if options is None else dict(options)
    method = "dopri5" if method is None else method
    if method not in SOLVERS:
        raise ValueError(
            f'Invalid method "{method}". Must be one of {{"' + '", "'.join(SOLVERS) + '"}.'
        )
    _norm_for(options, shapes)
    _check_t(t)
    reverse = len(t) > 1 and bool(t[0] > t[1])
    if reverse:
        t = -t
        _reverse_options(options)
        if event_fn is not None:
            ev2 = event_fn
            event_fn = lambda s, y: ev2(-s, y)  # noqa: E731
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if isinstance(tol, Tensor) and tol.requires_grad:
            raise ValueError(f"`{name}` cannot require gradient")
    if t.device != y0.device:
        warnings.warn("t is not on the same device as y0. Coercing to y0.device.", stacklevel=3)
        t = t.to(y0.device)
    f = PFunc(func, shapes, -1.0 if reverse else 1.0)
    bad = f.callbacks - SOLVERS[method][2]
    if bad:
        warnings.warn(f"Solver '{method}' does not support callbacks {bad}", stacklevel=3)
    return shapes, f, y0, t, rtol, atol, method, options, event_fn, reverse


def _run(
    f: PFunc, y0: Tensor, t: Tensor, rtol: Any, atol: Any, method: str, options: dict, event_fn: Any
) -> Any:
    solver = make_solver(method, f, y0, rtol, atol, options)
    if event_fn is None:
        return solver.integrate(t)
    tol = float(torch.as_tensor(atol).min()) if isinstance(atol, Tensor) else float(atol)
    return solver.integrate_until_event(t[0], event_fn, max(tol, 1e-12))


def odeint(
    func: Callable,
    y0: Any,
    t: Tensor,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    method: str | None = None,
    options: dict | None = None,
    event_fn: Any = None,
) -> Any:
    """Solve ``dy/dt = func(t, y)``, ``y(t[0]) = y0`` (torchdiffeq's ``odeint``).

    Returns ``y`` at ``t`` (a tensor, or a tuple for a tuple ``y0``), first dim time; with
    ``event_fn`` returns ``(event_t, y)`` where y holds the state at t[0] and at the event."""
    shapes, f, y0, t, rtol, atol, method, options, event_fn, reverse = _check_inputs(
        func, y0, t, rtol, atol, method, options, event_fn
    )
    sol = _run(f, y0, t, rtol, atol, method, options, event_fn)
    if event_fn is not None:
        event_t, sol = sol
        event_t = event_t.to(t)
        event_t = -event_t if reverse else event_t
    if shapes is not None:
        sol = unflat(sol, (len(sol),), shapes)
    return sol if event_fn is None else (event_t, sol)


def odeint_dense(
    func: Callable,
    y0: Tensor,
    t0: Tensor,
    t1: Tensor,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    method: str | None = None,
    options: dict | None = None,
) -> Callable[[Tensor], Tensor]:
    """dopri5 from t0 to t1; returns ``dense(t)`` evaluating the dense output at any t in between."""
    if not isinstance(y0, Tensor):
        raise TypeError(
            "`odeint_dense` needs a tensor `y0` (tuples are not supported, as in torchdiffeq)"
        )
    t = torch.stack([torch.as_tensor(t0), torch.as_tensor(t1)]).to(torch.as_tensor(t0))
    _, f, y0, t, rtol, atol, method, options, _, reverse = _check_inputs(
        func, y0, t, rtol, atol, method, options, None
    )
    if method != "dopri5" or reverse:
        raise ValueError(
            f"`odeint_dense` supports method='dopri5' forward in time, but got "
            f"method={method!r}, reverse={reverse}"
        )
    solver = make_solver(method, f, y0, rtol, atol, options)
    solver.record = []
    solver.integrate(t)
    starts = torch.stack([s[0] for s in solver.record]).reshape(-1).cpu()

    def dense(t_eval: Tensor) -> Tensor:
        i = (
            int(
                torch.searchsorted(
                    starts, torch.as_tensor(t_eval, dtype=starts.dtype).cpu(), right=True
                )
            )
            - 1
        )
        return solver.interp(torch.as_tensor(t_eval, dtype=solver.dtype), solver.record[max(i, 0)])

    return dense
