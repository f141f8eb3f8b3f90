"""Continuous-depth integration: a torchdiffeq-compatible ``odeint`` over every tableau we ship.

``odeint(func, y0, t, method=..., rtol=..., atol=..., options=...)`` solves ``dy/dt = func(t, y)``
and returns ``y(t_i)`` stacked, shape ``(len(t), *y0.shape)``; ``out[0]`` is ``y0``. One step is
always ``odeattn.compile.Stepper.step`` (the only stage loop in the package); this module only
decides where the steps go:

- **Fixed grid** (``options={"step_size": h}`` or ``{"steps": n}``; any method). Each output interval
  ``[t_{i-1}, t_i]`` is split into ``n = ceil(|t_i − t_{i-1}| / h)`` equal steps of size
  ``(t_i − t_{i-1}) / n ≤ h``. Output times are therefore always hit exactly (no interpolation
  error) and a ``step_size`` that does not divide an interval gives slightly shorter equal steps
  there. When every interval is a multiple of h this is exactly torchdiffeq's grid (torchdiffeq
  instead shortens the last step and interpolates linearly at off-grid outputs).
  ``{"steps": n}`` takes n equal steps per interval and needs no time value on the host, so a
  tensor ``t`` inside ``torch.compile`` costs no graph break (``step_size`` must read ``t``, as
  torchdiffeq does; under compile ``steps`` also skips the monotonicity check of ``t``).
- **Adaptive** (methods with an embedded error estimate ``b_err``, when no ``step_size`` is
  given): Hairer's initial step, PI controller, accept/reject as tensor masks (see
  ``odeattn.solve._controller``), FSAL reuse (the last stage of an accepted step is the next first
  stage). Output times between step ends: ``options["interp"]`` = ``"auto"`` (default) uses
  dense output where its accuracy matches the method, i.e. dopri5's own quartic (Shampine's
  mid-point weights) for dopri5 and the cubic Hermite interpolant for pairs of order ≤ 3
  (bosh3); every other pair (order ≥ 4 without a dense output of that order: tsit5,
  fehlberg45, cashkarp) clips its steps to land exactly on each output time. ``"hermite"``
  forces Hermite for all, ``"clip"`` forces clipping for all. The last step always lands exactly
  on ``t[-1]``. One host sync per step (the loop must know where it is).
- **Implicit** tableaux: the stage equations are solved by the Stepper with a tolerance derived
  from ``rtol``/``atol`` (``options={"implicit": "newton" | "fixed_point", "max_iter": n}``), so
  there is no fixed accuracy floor. Without ``b_err`` they need a ``step_size``.

Per-sample step sizes (``options={"per_sample": True}``, adaptive only; torchode semantics, see
``odeattn.solve._per_sample``): every sample of dim 0 has its own step, controller and accept mask, so
its solution and step count do not depend on the rest of the batch; f then gets a ``(B,)`` time.

``options={"adjoint": True}``: gradients by the backsolve adjoint instead (``odeattn.solve._adjoint``;
``func`` an ``nn.Module``; memory independent of the number of steps; then ``last_stats()``
describes the last backward solve once backward has run).

Methods without an error estimate raise ``ValueError`` when no ``step_size`` is given (torchdiffeq
silently steps once per output interval, its "dangerous default"). Unknown option keys raise
``ValueError`` naming the key and the closest valid one (torchdiffeq only warns). Autograd flows
through every step (discretise-then-optimise); the controller's step sizes are not differentiated.
Gradients w.r.t. ``t``: on fixed grids those of the discrete map (the step is
``(t_i − t_{i−1})/n``); adaptive, per-sample and adjoint solves use the exact-flow identities
(``odeattn._time_grad``), t[0] included.
``last_stats()`` returns the statistics of the most recent solve (nfe, accepted, rejected).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from odeattn.compile import Stepper
from odeattn.solve._adaptive import Counted, solve_adaptive
from odeattn.solve._adjoint import odeint_adjoint
from odeattn.solve._fixed import solve_fixed
from odeattn.solve._options import OPTIONS, check_inputs, check_options
from odeattn.solve._stats import SolveStats, last_stats, set_last
from odeattn.solve._time_grad import with_time_grads
from odeattn.tableau import TABLEAUS, ButcherTableau, get_tableau

__all__ = ["OPTIONS", "SolveStats", "last_stats", "odeint"]

Func = Callable[[Tensor, Tensor], Tensor]


def _tableau(method: Any):

    if isinstance(method, ButcherTableau):
        return method
    if not isinstance(method, str):
        raise TypeError(f"`method` must be a tableau name or a ButcherTableau, but got {method!r}")
    return get_tableau(method)  # ValueError listing valid names and the closest match


# Steppers of the registry's explicit tableaux, built once at import: building one (tableau ->
# MethodGraph -> plan) is networkx code, a torch._dynamo graph break inside a compiled solve.
_STEPPERS: dict[str, tuple[Any, Any]] = {}


def _prebuild() -> None:

    for name, tab in TABLEAUS.items():
        if tab.is_explicit:
            _STEPPERS[name] = (tab, Stepper(tab))


def make_stepper(tab: Any, rtol: float, atol: float, opts: Mapping[str, Any]) -> Any:
    """The stage kernel for ``tab`` (explicit kernels do not depend on rtol/atol)."""
    hit = _STEPPERS.get(tab.name)
    if hit is not None and hit[0] is tab:
        return hit[1]

    kw: dict[str, Any] = {"rtol": rtol, "atol": atol}
    if not tab.is_explicit:
        kw["implicit"] = opts.get("implicit", "newton")
        if "max_iter" in opts:
            kw["max_iter"] = opts["max_iter"]
    return Stepper(tab, **kw)


_prebuild()


def odeint(
    func: Func,
    y0: Tensor,
    t: Tensor | Sequence[float],
    *,
    method: Any = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    options: Mapping[str, Any] | None = None,
) -> Tensor:
    """Solve ``dy/dt = func(t, y)``, ``y(t[0]) = y0``; return ``y`` at ``t``, ``(len(t), *y0.shape)``.

    ``method`` is a name in ``odeattn.tableau.TABLEAUS`` (or a ``ButcherTableau``); ``t`` a 1-D
    tensor (or a sequence of floats: then nothing is read back from the device) of strictly
    monotone times; ``options`` is described in ``OPTIONS``. ``func`` gets a 0-d time of y0's dtype
    (steps are placed in float64).
    """
    tab = _tableau(method)
    fixed = options is not None and ("step_size" in options or "steps" in options)
    opts = check_options(options, adaptive=not fixed, implicit=not tab.is_explicit)
    read = not ("steps" in opts and torch.compiler.is_compiling())
    tt, times = check_inputs(y0, t, rtol, atol, read)
    if opts.pop("adjoint", False):
        return _adjoint(func, y0, tt, tab, rtol, atol, opts)
    if not fixed and tab.b_err is None:
        raise ValueError(
            f"method {tab.name!r} has no embedded error estimate, so it cannot choose "
            f"its own steps: pass options={{'step_size': h}} or {{'steps': n}} (or an embedded pair, "
            f"e.g. 'dopri5', 'bosh3', 'tsit5')"
        )
    stepper = make_stepper(tab, rtol, atol, opts)
    f = Counted(func, y0.dtype)
    stats = SolveStats(method=tab.name, adaptive=not fixed)
    set_last(stats)
    if tt.shape[0] == 1:
        out = y0.unsqueeze(0)
    elif fixed:
        grid = int(opts["steps"]) if "steps" in opts else float(opts["step_size"])
        out = solve_fixed(stepper, f, y0, tt, times, grid, tab.fsal, stats)
    else:
        out = with_time_grads(
            lambda y, ts: solve_adaptive(stepper, f, y, ts, times, tab, opts, rtol, atol, stats),
            f,
            y0,
            tt,
            bool(opts.get("per_sample")),
        )
    stats.nfe = f.n
    return out


def _adjoint(
    func: Func, y0: Tensor, tt: Tensor, tab: Any, rtol: float, atol: float, opts: dict
) -> Tensor:
    """``options={"adjoint": True}``: the backsolve adjoint, with exact-flow time gradients."""
    if opts.get("per_sample"):
        raise ValueError("options 'adjoint' and 'per_sample' cannot be combined; drop one")

    def solve(fn: Func, y: Tensor, ts: Tensor) -> Tensor:
        return odeint(fn, y, ts, method=tab, rtol=rtol, atol=atol, options=opts)

    return with_time_grads(lambda y, ts: odeint_adjoint(solve, func, y, ts), func, y0, tt)
