"""torchdiffeq's fixed-grid solvers on odeattn's stage kernel, plus Adams and the SciPy bridge.

Grid (torchdiffeq ``FixedGridODESolver``): by default the output times themselves (one step per
output interval); ``step_size=h`` gives t₀, t₀ + h, t₀ + 2h, … with the last point moved to
t[-1]; ``grid_constructor(func, y0, t)`` any grid from t[0] to t[-1]. Outputs between grid
points: ``interp="linear"`` (default) or ``"cubic"`` (Hermite with f at both ends). With
``perturb=True`` f is evaluated just inside each step (t₀ → next float, t₁ → previous float).
Gradients flow through the grid (the discrete map), t included.

Adams (``explicit_adams`` / ``implicit_adams`` = ``fixed_adams``): Adams–Bashforth of order
≤ ``max_order`` (4) with coefficients from the actual, possibly non-uniform, past times
(∫ of the Lagrange interpolant of past f, exact by 3-point Gauss–Legendre), started with the
3/8 rule; ``implicit_adams`` corrects with Adams–Moulton (PECE iterated ≤ ``max_iters`` times
until the change is within atol + rtol·|y|).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import Any

import numpy as np
import torch
from torch import Tensor

from odeattn.compile import StageSolveError, Stepper
from odeattn.solve import hermite, make_stepper
from odeattn.tableau import TABLEAUS
from odeattn.torchdiffeq._rk import find_event, warn_unused

__all__ = ["Adams", "FixedGrid", "ScipySolver"]

_GL3 = ((0.5 - math.sqrt(15) / 10, 5 / 18), (0.5, 8 / 18), (0.5 + math.sqrt(15) / 10, 5 / 18))


class _Perturbed:
    """f with evaluations at a step's ends moved just inside the step."""

    def __init__(self, func: Any, t0: Tensor, t1: Tensor) -> None:
        self.func, self.a, self.b = func, float(t0.detach()), float(t1.detach())
        self.eps = 1e-12 * max(1.0, abs(self.a), abs(self.b))

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        v = float(t.reshape(-1)[0])
        p = 1 if abs(v - self.a) <= self.eps else (-1 if abs(v - self.b) <= self.eps else 0)
        return self.func(t, y, perturb=p)


class FixedGrid:
    """One fixed-grid solve (see the module doc); subclasses override ``_step``."""

    def __init__(
        self,
        func: Any,
        y0: Tensor,
        rtol: Any = 1e-7,
        atol: Any = 1e-9,
        *,
        tableau: Any = None,
        step_size: Any = None,
        grid_constructor: Any = None,
        interp: str = "linear",
        perturb: bool = False,
        **unused: Any,
    ) -> None:
        warn_unused(type(self).__name__, unused)
        if step_size is not None and grid_constructor is not None:
            raise ValueError("`step_size` and `grid_constructor` are mutually exclusive; give one")
        if interp not in ("linear", "cubic"):
            raise ValueError(f"`interp` must be 'linear' or 'cubic', but got interp={interp!r}")
        self.func, self.y0, self.tab, self.interp_kind = func, y0, tableau, interp
        self.step_size, self.grid_constructor, self.perturb = step_size, grid_constructor, perturb
        self.rtol = float(torch.as_tensor(rtol).min()) if isinstance(rtol, Tensor) else float(rtol)
        self.atol = float(torch.as_tensor(atol).min()) if isinstance(atol, Tensor) else float(atol)
        self.fallback = None
        if tableau is not None:
            self.stepper = make_stepper(tableau, self.rtol, self.atol, {})
            if not tableau.is_explicit and tableau.stages == 1:  # one implicit stage: try the
                self.fallback = self.stepper  # Jacobian-free fixed point first, Newton if it fails
                self.stepper = Stepper(
                    tableau, rtol=self.rtol, atol=self.atol, implicit="fixed_point", max_iter=12
                )

    def _grid(self, t: Tensor) -> Tensor:
        if self.grid_constructor is not None:
            return self.grid_constructor(self.func, self.y0, t)
        if self.step_size is None:
            return t
        n = math.ceil(float((t[-1] - t[0]) / self.step_size) + 1)
        g = torch.arange(0, n, dtype=t.dtype, device=t.device) * self.step_size + t[0]
        g[-1] = t[-1]
        return g

    def _f(self, t0: Tensor, t1: Tensor) -> Any:
        return _Perturbed(self.func, t0, t1) if self.perturb else self.func

    def _step(self, t0: Tensor, dt: Tensor, t1: Tensor, y0: Tensor) -> Tensor:
        if self.fallback is None:
            return self.stepper.step(self._f(t0, t1), t0, y0, dt)[0]
        try:  # non-stiff at this step: a few f-evaluations, no Jacobian
            return self.stepper.step(self._f(t0, t1), t0, y0, dt)[0]
        except StageSolveError:  # stiff: Newton with the exact Jacobian, for the rest of the
            self.stepper, self.fallback = self.fallback, None  # solve (no failed try per step)
            return self.stepper.step(self._f(t0, t1), t0, y0, dt)[0]

    def _between(self, t0: Tensor, t1: Tensor, y0: Tensor, y1: Tensor, t: Tensor) -> Tensor:
        if t == t0:
            return y0
        if t == t1:
            return y1
        s = ((t - t0) / (t1 - t0)).to(y0.real.dtype)
        if self.interp_kind == "linear":
            return y0 + s * (y1 - y0)
        h = (t1 - t0).to(y0.real.dtype)
        return hermite(s, y0, y1, h * self.func(t0, y0), h * self.func(t1, y1))

    def integrate(self, t: Tensor) -> Tensor:
        grid = self._grid(t).to(t)
        if not (grid[0] == t[0] and grid[-1] == t[-1]):
            raise ValueError("the grid must start at t[0] and end at t[-1]")
        out, j, y0 = [self.y0], 1, self.y0
        for t0, t1 in itertools.pairwise(grid):
            dt = t1 - t0
            self.func.callback_step(t0, y0, dt)
            y1 = self._step(t0, dt, t1, y0)
            while j < len(t) and t1 >= t[j]:
                out.append(self._between(t0, t1, y0, y1, t[j]))
                j += 1
            y0 = y1
        return torch.stack(out)

    def integrate_until_event(self, t0: Tensor, event_fn: Any, tol: float) -> tuple[Tensor, Tensor]:
        if self.step_size is None:
            raise ValueError("event handling with a fixed-grid method needs options['step_size']")
        t0 = t0.to(torch.float64)
        y0, sign0 = self.y0, torch.sign(event_fn(t0, self.y0))
        while True:
            t1 = t0 + self.step_size
            self.func.callback_step(t0, y0, t1 - t0)
            y1 = self._step(t0, t1 - t0, t1, y0)
            if torch.any(torch.sign(event_fn(t1, y1)) != sign0):
                break
            t0, y0 = t1, y1
        t_ev, y_ev = find_event(
            lambda s: self._between(t0, t1, y0, y1, s), sign0, t0, t1, event_fn, tol
        )
        return t_ev, torch.stack([self.y0, y_ev])


def _float_weights(ts: list[float], a: float, b: float) -> list[float]:
    w = [0.0] * len(ts)
    for x, g in _GL3:
        s = a + (b - a) * float(x)
        for i, ti in enumerate(ts):
            li = 1.0
            for j, tj in enumerate(ts):
                if j != i:
                    li *= (s - tj) / (ti - tj)
            w[i] += float(g) * (b - a) * li
    return w


class Adams(FixedGrid):
    """Adams–Bashforth(-Moulton) on the fixed grid (see the module doc)."""

    def __init__(
        self,
        func: Any,
        y0: Tensor,
        rtol: Any = 1e-3,
        atol: Any = 1e-4,
        *,
        implicit: bool = False,
        max_iters: int = 4,
        max_order: int = 4,
        **kw: Any,
    ) -> None:
        kw.pop("tableau", None)
        super().__init__(func, y0, rtol, atol, tableau=TABLEAUS["rk38"], **kw)
        self.implicit, self.max_iters, self.order = implicit, int(max_iters), int(max_order)
        self.hist: deque = deque(maxlen=self.order)  # (t, f), newest first

    @staticmethod
    def _weights(ts: list[Tensor], a: Tensor, b: Tensor) -> list[Tensor]:
        """∫_a^b ℓ_i(s) ds for the Lagrange basis on the nodes ``ts`` (differentiable in t;
        in Python floats when no time needs a gradient: ~50 scalar ops, not ~50 tensor ops)."""
        if not any(x.requires_grad for x in (a, b, *ts)):
            wf = _float_weights([float(x) for x in ts], float(a), float(b))
            return [torch.tensor(x, dtype=a.dtype) for x in wf]
        w = [torch.zeros_like(a) for _ in ts]
        for x, g in _GL3:
            s = a + (b - a) * x
            for i, ti in enumerate(ts):
                li = torch.ones_like(a)
                for j, tj in enumerate(ts):
                    if j != i:
                        li = li * (s - tj) / (ti - tj)
                w[i] = w[i] + g * (b - a) * li
        return w

    def _combine(self, y0: Tensor, pts: list, t0: Tensor, t1: Tensor) -> Tensor:
        w = self._weights([p[0] for p in pts], t0, t1)
        return y0 + sum(wi.to(y0.dtype) * p[1] for wi, p in zip(w, pts))

    def _step(self, t0: Tensor, dt: Tensor, t1: Tensor, y0: Tensor) -> Tensor:
        f = self._f(t0, t1)
        f0 = f(t0, y0)
        self.hist.appendleft((t0, f0))
        if len(self.hist) < self.order:  # start-up: the 3/8 rule, reusing f0
            return self.stepper.step(f, t0, y0, dt, k1=f0)[0]
        y1 = self._combine(y0, list(self.hist), t0, t1)
        if not self.implicit:
            return y1
        past = list(self.hist)[: self.order - 1]
        for _ in range(self.max_iters):
            y_new = self._combine(y0, [(t1, f(t1, y1)), *past], t0, t1)
            done = bool(((y_new - y1).abs() <= self.atol + self.rtol * y_new.abs()).all())
            y1 = y_new
            if done:
                break
        return y1


class ScipySolver:
    """``scipy.integrate.solve_ivp`` (torchdiffeq's ``scipy_solver``; no gradients)."""

    def __init__(
        self,
        func: Any,
        y0: Tensor,
        rtol: Any,
        atol: Any,
        *,
        solver: str = "LSODA",
        min_step: float = 0.0,
        max_step: float = math.inf,
        **unused: Any,
    ) -> None:
        unused.pop("norm", None)
        warn_unused(type(self).__name__, unused)
        self.func, self.y0, self.solver = func, y0, solver
        self.rtol = rtol.detach().cpu().numpy() if isinstance(rtol, Tensor) else rtol
        self.atol = atol.detach().cpu().numpy() if isinstance(atol, Tensor) else atol
        self.kw = (
            {"min_step": min_step, "max_step": max_step}
            if solver == "LSODA"
            else {"max_step": max_step}
        )

    def integrate(self, t: Tensor) -> Tensor:
        from scipy.integrate import solve_ivp

        if t.numel() == 1:
            return self.y0.unsqueeze(0)
        y0, shape = self.y0, self.y0.shape

        def fun(s: float, y: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                ty = torch.as_tensor(y, dtype=y0.dtype, device=y0.device).reshape(shape)
                ts = torch.tensor(s, dtype=torch.float64, device=y0.device)
                return self.func(ts, ty).detach().cpu().reshape(-1).numpy()

        tn = t.detach().cpu().to(torch.float64).numpy()
        sol = solve_ivp(
            fun,
            (tn[0], tn[-1]),
            y0.detach().cpu().reshape(-1).numpy(),
            t_eval=tn,
            method=self.solver,
            rtol=self.rtol,
            atol=self.atol,
            **self.kw,
        )
        out = torch.as_tensor(sol.y.T, dtype=y0.dtype, device=y0.device)
        return out.reshape(len(tn), *shape)
