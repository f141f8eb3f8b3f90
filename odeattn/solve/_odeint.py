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

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from odeattn._errors import did_you_mean as _closest
from odeattn.compile import Stepper
from odeattn.solve._adaptive import Counted, solve_adaptive
from odeattn.solve._adjoint import odeint_adjoint
from odeattn.solve._time_grad import with_time_grads
from odeattn.tableau import TABLEAUS, ButcherTableau, get_tableau

__all__ = ["OPTIONS", "SolveStats", "last_stats", "odeint"]

Func = Callable[[Tensor, Tensor], Tensor]

#: Every option ``odeint`` understands, with what it does (``None`` = the default applies).
OPTIONS: dict[str, str] = {
    "step_size": "fixed grid: largest step; each output interval gets ceil(span/h) equal steps",
    "steps": "fixed grid: this many equal steps per output interval (no host read of tensor t)",
    "first_step": "adaptive: initial step (default: Hairer's initial step selection)",
    "safety": "adaptive: safety factor of the controller (default 0.9)",
    "ifactor": "adaptive: largest growth factor of the step (default 10)",
    "dfactor": "adaptive: smallest shrink factor after a rejected step (default 0.2)",
    "pcoeff": "adaptive: proportional coefficient k_P of the PI controller (default 0.2; 0 = I)",
    "icoeff": "adaptive: integral coefficient k_I of the PI controller (default 0.65)",
    "max_step": "adaptive: largest step (default inf)",
    "max_num_steps": "adaptive: most steps (accepted + rejected) before RuntimeError",
    "interp": "adaptive: outputs between steps, 'auto' (see module doc), 'hermite' or 'clip'",
    "per_sample": "adaptive: True = one step size per sample of dim 0 (torchode semantics)",
    "adjoint": "True = gradients by the backsolve adjoint (func an nn.Module; odeattn.solve._adjoint)",
    "implicit": "implicit tableaux: stage solver, 'newton' (default) or 'fixed_point'",
    "max_iter": "implicit tableaux: most stage-solver iterations per step",
}
_ADAPTIVE_ONLY = (
    "first_step",
    "safety",
    "ifactor",
    "dfactor",
    "pcoeff",
    "icoeff",
    "max_step",
    "max_num_steps",
    "interp",
    "per_sample",
)


@dataclass
class SolveStats:
    """Statistics of one ``odeint`` call (``last_stats()``)."""

    method: str
    adaptive: bool
    nfe: int = 0
    accepted: int = 0
    rejected: int = 0
    accepted_per_sample: Tensor | None = None  # (B,) with options["per_sample"]; then
    rejected_per_sample: Tensor | None = None  # accepted / rejected are their sums

    @property
    def steps(self) -> int:
        return self.accepted + self.rejected


_LAST: list[SolveStats] = []


def last_stats() -> SolveStats:
    """Statistics (``nfe``, ``accepted``, ``rejected``, ``steps``) of the most recent solve."""
    if not _LAST:
        raise RuntimeError("`last_stats()` needs a finished `odeint` call first, but none ran yet")
    return _LAST[-1]


def _positive(
    opts: Mapping[str, Any],
    key: str,
    *,
    integer: bool = False,
    upper: float | None = None,
    lower_incl: float | None = None,
) -> None:
    if key not in opts:
        return
    v = opts[key]
    ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
    if (
        isinstance(v, bool)
        or not ok_type
        or not (v > 0 if lower_incl is None else v >= lower_incl)
        or (upper is not None and v > upper)
        or (not integer and math.isnan(v))
    ):
        rng = (
            f"in [{lower_incl}, {upper}]"
            if lower_incl is not None
            else (f"in (0, {upper}]" if upper is not None else "> 0")
        )
        kind = "an int" if integer else "a number"
        raise ValueError(f"`options[{key!r}]` must be {kind} {rng}, but got {key}={v!r}")


def _check_options(options: Mapping[str, Any] | None, adaptive: bool, implicit: bool) -> dict:
    opts = dict(options or {})
    for key in opts:
        if key not in OPTIONS:
            raise ValueError(
                f"unknown option {key!r} for odeattn.odeint{_closest(key, list(OPTIONS))} "
                f"valid options: {', '.join(OPTIONS)}"
            )
    if not adaptive:
        extra = [k for k in _ADAPTIVE_ONLY if k in opts]
        if extra:
            raise ValueError(
                f"option {extra[0]!r} only applies to adaptive solves, but "
                f"`step_size` or `steps` was given (a fixed grid); remove one of them"
            )
    if "step_size" in opts and "steps" in opts:
        raise ValueError(
            "options 'step_size' and 'steps' both set the fixed grid; give one of them"
        )
    if not implicit:
        extra = [k for k in ("implicit", "max_iter") if k in opts]
        if extra:
            raise ValueError(f"option {extra[0]!r} only applies to implicit tableaux; drop it")
    for key in ("step_size", "first_step", "ifactor", "max_step"):
        _positive(opts, key)
    _positive(opts, "safety", upper=1.0)
    _positive(opts, "dfactor", upper=1.0)
    _positive(opts, "pcoeff", lower_incl=0.0, upper=1.0)
    _positive(opts, "icoeff", upper=1.0)
    _positive(opts, "max_num_steps", integer=True)
    _positive(opts, "max_iter", integer=True)
    _positive(opts, "steps", integer=True)
    if opts.get("ifactor", 10.0) < 1.0:
        raise ValueError(f"`options['ifactor']` must be >= 1, but got ifactor={opts['ifactor']!r}")
    for key in ("per_sample", "adjoint"):
        if not isinstance(opts.get(key, False), bool):
            raise ValueError(f"`options[{key!r}]` must be a bool, but got {opts[key]!r}")
    for key, valid in (
        ("interp", ("auto", "hermite", "clip")),
        ("implicit", ("newton", "fixed_point")),
    ):
        if key in opts and opts[key] not in valid:
            raise ValueError(f"`options[{key!r}]` must be one of {valid}, but got {opts[key]!r}")
    return opts


def _check_inputs(
    y0: Tensor, t: Tensor | Sequence[float], rtol: float, atol: float, read: bool = True
) -> tuple[Tensor, list[float] | None]:
    """Output times as a float64 tensor on y0's device, and as floats (``None`` if not ``read``)."""
    if not isinstance(y0, Tensor) or not y0.is_floating_point():
        raise TypeError(
            f"`y0` must be a floating-point tensor (concatenate several states into one), "
            f"but got {type(y0).__name__}"
            + (f" of dtype {y0.dtype}" if isinstance(y0, Tensor) else "")
        )
    for name, v in (("rtol", rtol), ("atol", atol)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
            raise ValueError(f"`{name}` must be a number >= 0, but got {name}={v!r}")
    if rtol == 0 and atol == 0:
        raise ValueError("`rtol` and `atol` cannot both be 0; e.g. rtol=1e-7, atol=1e-9")
    if isinstance(t, Tensor):
        if t.dim() != 1 or t.numel() < 1:
            raise ValueError(
                f"`t` must be a 1-D tensor of output times, but got shape {tuple(t.shape)}"
            )
        tt = t.to(dtype=torch.float64)
        if not read:  # options["steps"] inside torch.compile: values stay on the device
            return tt.to(y0.device), None
        times = t.detach().tolist()  # the one host read of the output times
    else:
        times = [float(v) for v in t]
        if not times:
            raise ValueError("`t` must hold at least one output time, but got an empty sequence")
        tt = torch.tensor(times, dtype=torch.float64, device=y0.device)
    d = [b - a for a, b in itertools.pairwise(times)]
    if not (all(x > 0 for x in d) or all(x < 0 for x in d)) or not all(map(math.isfinite, times)):
        raise ValueError(
            f"`t` must be finite and strictly increasing or strictly decreasing, "
            f"but got t={times[:6]}{'...' if len(times) > 6 else ''}"
        )
    return tt.to(y0.device), times


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


def _stepper(tab: Any, rtol: float, atol: float, opts: Mapping[str, Any]) -> Any:
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
    opts = _check_options(options, adaptive=not fixed, implicit=not tab.is_explicit)
    read = not ("steps" in opts and torch.compiler.is_compiling())
    tt, times = _check_inputs(y0, t, rtol, atol, read)
    if opts.pop("adjoint", False):
        if opts.get("per_sample"):
            raise ValueError("options 'adjoint' and 'per_sample' cannot be combined; drop one")

        def solve(fn: Func, y: Tensor, ts: Tensor) -> Tensor:
            return odeint(fn, y, ts, method=tab, rtol=rtol, atol=atol, options=opts)

        return with_time_grads(lambda y, ts: odeint_adjoint(solve, func, y, ts), func, y0, tt)
    if not fixed and tab.b_err is None:
        raise ValueError(
            f"method {tab.name!r} has no embedded error estimate, so it cannot choose "
            f"its own steps: pass options={{'step_size': h}} or {{'steps': n}} (or an embedded pair, "
            f"e.g. 'dopri5', 'bosh3', 'tsit5')"
        )
    stepper = _stepper(tab, rtol, atol, opts)
    f = Counted(func, y0.dtype)
    stats = SolveStats(method=tab.name, adaptive=not fixed)
    _LAST[:] = [stats]
    if tt.shape[0] == 1:
        out = y0.unsqueeze(0)
    elif fixed:
        grid = int(opts["steps"]) if "steps" in opts else float(opts["step_size"])
        out = _solve_fixed(stepper, f, y0, tt, times, grid, tab.fsal, stats)
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


def _solve_fixed(
    stepper: Any,
    f: Counted,
    y0: Tensor,
    tt: Tensor,
    times: list[float] | None,
    grid: float | int,
    fsal: bool,
    stats: SolveStats,
) -> Tensor:
    """Equal steps per output interval: ``grid`` is the largest step (float) or the number of
    steps (int). The step is a Python float (exact in float64) unless ``t`` requires grad or
    was not read; all stage times of an interval come from one tensor expression
    (``t_{j-1} + (i + c) h``, unbound once), so a step creates no 0-d tensors of its own."""
    ys = [y0]
    y, k1 = y0, None
    explicit = stepper.plan.explicit
    cs = stepper.cs if explicit else (0.0,)
    nc = len(cs)
    for j in range(1, tt.shape[0]):
        if isinstance(grid, int):
            n = grid
        else:
            n = max(1, math.ceil(abs(times[j] - times[j - 1]) / grid * (1 - 1e-12)))
        if times is None or tt.requires_grad or not explicit:
            h: Tensor | float = (tt[j] - tt[j - 1]) / n  # 0-d, differentiable w.r.t. t
        else:
            h = (times[j] - times[j - 1]) / n
        ic = torch.arange(n, dtype=tt.dtype, device=tt.device).unsqueeze(1)
        ic = ic + torch.tensor(cs, dtype=tt.dtype, device=tt.device) if nc > 1 else ic
        tn = ic.mul_(h).add_(tt[j - 1]).reshape(-1).to(y0.dtype).unbind(0)  # f's time dtype
        for i in range(n):
            row = tn[i * nc : (i + 1) * nc]
            y, _, ks = stepper.step(f, row[0], y, h, k1=k1, nodes=row if explicit else None)
            k1 = ks[-1] if fsal else None
        stats.accepted += n
        ys.append(y)
    return torch.stack(ys)
