"""The one compiler: method graph + vector field(s) + step size → ``nn.Module``.

A residual block is one step of a Runge–Kutta method (RKCNN Eq. 2–3, StepNet Eq. 12)

    k_i = f_i(x_t + h Σ_j a_ij k_j),   Φ = Σ_i b_i k_i,   y = x_t + h · Δt ⊙ Φ,

compiled from a :class:`~odeattn.graph.MethodGraph` (or a tableau name / ``ButcherTableau``).
This is the only module with a stage loop; the solver uses :class:`Stepper`, networks use
:func:`compile_step`.

- **Explicit** graphs become a static stage loop over constant Python-float coefficients (zero
  a_ij skipped, fused ``add(alpha=)``/``addcmul`` ops, no data-dependent control flow:
  ``torch._dynamo`` sees zero graph breaks).
- **Implicit** graphs solve their stage cycle by Newton (exact dense Jacobian, small states) or
  fixed point, with a stopping rule tied to ``rtol``/``atol``; see :mod:`odeattn.compile._implicit`.
  Non-convergence raises ``StageSolveError``.
- **RKCNN** graphs (``MethodGraph.rkcnn(variant, s, sweeps)``) are unrolled learned sweeps; see
  :mod:`odeattn.compile._rkcnn`: ``compile_step(MethodGraph.rkcnn("R", 3, 1), fields=[f_1..f_s,
  u_1..u_s], combine=None)``.

``compile_step(method, fields, *, step=None, shortcut=None, h=1.0, time_input=False, ...)``:
``step=None`` is Δt = 1 with no multiplication (a plain block is exactly ``x + Φ``), a float is
a constant, an ``nn.Module`` an adaptor called ``dt = step(x_t, phi)``. A projection ``shortcut``
(x_t = shortcut(x), fields see the raw x) is allowed only for single-stage explicit methods.
With ``retain_last = True`` the module keeps ``.last`` (:class:`StepRecord`: stages, Φ, Δt,
error estimate h Σ b_err_i k_i).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from odeattn._errors import unknown_name
from odeattn.compile._base import StepBase, as_modules
from odeattn.compile._implicit import StageSolveError, solve_stages
from odeattn.compile._plan import Plan, lincomb, node, shift
from odeattn.tableau import ButcherTableau, get_tableau

__all__ = ["MethodStep", "StageSolveError", "Stepper"]

Func = Callable[[Tensor, Tensor], Tensor]
_IMPLICIT = ("newton", "fixed_point")


def _check_implicit(implicit: str, max_iter: int, rtol: float, atol: float) -> None:
    if implicit not in _IMPLICIT:
        raise unknown_name("implicit solver", implicit, _IMPLICIT)
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"`max_iter` must be an int ≥ 1, but got max_iter={max_iter!r}")
    if not (rtol >= 0 and atol >= 0 and rtol + atol > 0):
        raise ValueError(
            f"`rtol`, `atol` must be ≥ 0 and not both 0, but got rtol={rtol}, atol={atol}"
        )


class Stepper:
    """One step of a tableau for ``y' = f(t, y)``: the stage kernel shared with the solver.

    ``step(f, t, y, h, k1=None, nodes=None) -> (y_new, err | None, ks)``; ``t`` a 0-d tensor,
    ``h`` a Python float (shared step: every linear combination is a chain of
    ``add(alpha=a·h)``, no 0-d tensors), a 0-d tensor, or a per-sample ``(B,)`` tensor
    (broadcast over the trailing dims of ``y``; then f gets a ``(B,)`` time). ``k1`` is a
    reused f(t, y) (FSAL). ``nodes`` are precomputed stage times t + c h, one per entry of
    ``self.cs`` (the distinct nodes, in stage order; a fixed-grid solve computes them for all
    its steps at once). ``err = h Σ b_err_i k_i``.
    """

    def __init__(
        self,
        tableau: str | ButcherTableau,
        *,
        rtol: float = 1e-7,
        atol: float = 1e-9,
        implicit: str = "newton",
        max_iter: int = 50,
        dense_limit: int = 512,
    ) -> None:
        _check_implicit(implicit, max_iter, rtol, atol)
        self.tableau = get_tableau(tableau)
        self.plan = Plan.of(self.tableau)
        self.rtol, self.atol, self.implicit = float(rtol), float(atol), implicit
        self.max_iter, self.dense_limit = max_iter, int(dense_limit)
        self._k1_ok = not any(x != 0 for x in self.tableau.a[0]) and self.tableau.c[0] == 0
        cs: list[float] = []
        for c in self.plan.c:
            if c not in cs:
                cs.append(c)
        self.cs: tuple[float, ...] = tuple(cs)
        self._cidx: tuple[int, ...] = tuple(cs.index(c) for c in self.plan.c)

    def step(
        self,
        f: Func,
        t: Tensor,
        y: Tensor,
        h: Tensor | float,
        k1: Tensor | None = None,
        nodes: Any = None,
    ) -> tuple[Tensor, Tensor | None, list[Tensor]]:
        plan = self.plan
        if k1 is not None and not self._k1_ok:
            raise ValueError(
                f"{self.tableau.name}: `k1` (a reused f(t, y)) needs an explicit "
                f"first stage at c=0; pass k1=None"
            )
        h, hb = self._step_views(t, y, h)
        if plan.explicit:
            y_new, ks = self._explicit(f, t, y, h, hb, k1, nodes)
        else:
            ks = solve_stages(
                f,
                t,
                y,
                h,
                hb,
                plan,
                rtol=self.rtol,
                atol=self.atol,
                method=self.implicit,
                max_iter=self.max_iter,
                dense_limit=self.dense_limit,
                k1=k1,
            )
            y_new = shift(y, plan.b, ks, hb)
        return y_new, self._error(ks, hb), ks

    def _step_views(
        self, t: Tensor, y: Tensor, h: Tensor | float
    ) -> tuple[Tensor | float, Tensor | float]:
        """(h, hb): a Python float for both on the explicit fast path, else h as a tensor and
        hb = h broadcast over the trailing dims of y (a per-sample step)."""
        if isinstance(h, (int, float)) and not isinstance(h, bool) and self.plan.explicit:
            return float(h), float(h)
        if not isinstance(h, Tensor):
            dtype = t.dtype if isinstance(t, Tensor) else y.dtype
            h = torch.as_tensor(h, dtype=dtype, device=y.device)
        hb = h if h.dim() == 0 else h.reshape(h.shape + (1,) * (y.dim() - h.dim()))
        if hb.dtype != y.dtype and y.is_floating_point():  # a float64 step keeps y's dtype
            hb = hb.to(y.dtype)
        return h, hb

    def _explicit(
        self,
        f: Func,
        t: Tensor,
        y: Tensor,
        h: Tensor | float,
        hb: Tensor | float,
        k1: Tensor | None,
        nodes: Any,
    ) -> tuple[Tensor, list[Tensor]]:
        """The static explicit stage loop; each distinct node t + c h is formed once."""
        plan, ks = self.plan, []
        tn: list[Tensor | None] = [None] * len(self.cs) if nodes is None else list(nodes)
        z = y
        for i in range(plan.stages):
            if i == 0 and k1 is not None:
                ks.append(k1)
                continue
            ci = self._cidx[i]
            if tn[ci] is None:
                tn[ci] = node(t, plan.c[i], h)
            z = shift(y, plan.rows[i], ks, hb)
            ks.append(f(tn[ci], z))
        return (z if plan.y_is_last_stage else shift(y, plan.b, ks, hb)), ks

    def _error(self, ks: list[Tensor], hb: Tensor | float) -> Tensor | None:
        """The embedded error estimate h Σ b_err_i k_i (None without an embedded pair)."""
        b_err = self.plan.b_err
        if b_err is None:
            return None
        if not isinstance(hb, float):
            return lincomb(b_err, ks) * hb
        if len(b_err) > 1:
            return lincomb(b_err, ks).mul_(hb)
        return b_err[0][1] * hb * ks[b_err[0][0]]


class MethodStep(StepBase):
    """A compiled residual step ``y = x_t + h·Δt ⊙ Σ b_i k_i`` (see the module docstring)."""

    def __init__(
        self,
        tableau: ButcherTableau,
        fields: Any,
        *,
        step: Any = None,
        shortcut: nn.Module | None = None,
        h: float = 1.0,
        time_input: bool = False,
        t0: float = 0.0,
        rtol: float = 1e-7,
        atol: float = 1e-9,
        implicit: str = "newton",
        max_iter: int = 50,
    ) -> None:
        super().__init__()
        self.tableau, self.plan = tableau, Plan.of(tableau)
        self.fields = as_modules(fields)
        s, nf = tableau.stages, len(self.fields)
        if nf not in (1, s):
            raise ValueError(
                f"`fields` must be one module (shared f) or one per stage ({s} for "
                f"{tableau.name!r}), but got {nf}"
            )
        if shortcut is not None and (s != 1 or not tableau.is_explicit):
            raise ValueError(
                f"a projection `shortcut` needs a single-stage explicit method "
                f"(e.g. 'euler'), but got method={tableau.name!r}"
            )
        if not tableau.is_explicit:
            if nf != 1:
                raise ValueError("implicit methods need one shared field, got one per stage")
            self.stepper = Stepper(
                tableau, rtol=rtol, atol=atol, implicit=implicit, max_iter=max_iter
            )
        self._init_step(step, shortcut, h)
        self.time_input, self.t0 = bool(time_input), float(t0)
        self._field_of = [self.fields[i if nf > 1 else 0] for i in range(s)]

    def _stages_explicit(self, x: Tensor, t: Tensor | float | None) -> list[Tensor]:
        plan, h, ks = self.plan, self.h, []
        for i in range(plan.stages):
            z = shift(x, plan.rows[i], ks, h)
            f = self._field_of[i]
            ks.append(f(t + plan.c[i] * h, z) if self.time_input else f(z))
        return ks

    def _stages_implicit(self, x: Tensor, t: Tensor | float | None) -> list[Tensor]:
        field = self._field_of[0]
        fn = (lambda tt, z: field(tt, z)) if self.time_input else (lambda tt, z: field(z))
        tt = torch.as_tensor(self.t0 if t is None else t, dtype=x.dtype, device=x.device)
        hh = torch.tensor(self.h, dtype=x.dtype, device=x.device)
        s = self.stepper
        return solve_stages(
            fn,
            tt,
            x,
            hh,
            hh,
            self.plan,
            rtol=s.rtol,
            atol=s.atol,
            method=s.implicit,
            max_iter=s.max_iter,
            dense_limit=s.dense_limit,
        )

    def forward(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        if self.time_input and t is None:
            t = self.t0
        x_t = x if self.shortcut is None else self.shortcut(x)
        ks = self._stages_explicit(x, t) if self.plan.explicit else self._stages_implicit(x, t)
        return self._finish(x_t, lincomb(self.plan.b, ks), ks, self.plan.b_err)

    def extra_repr(self) -> str:
        return f"method={self.tableau.name!r}, h={self.h}, time_input={self.time_input}"
