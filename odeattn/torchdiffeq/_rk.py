"""torchdiffeq's adaptive Runge–Kutta loop on odeattn's stage kernel (``Stepper``).

Semantics of ``torchdiffeq``'s ``RKAdaptiveStepsizeODESolver``: time increases (the caller has
already negated reversed times); steps are never clipped to output times — outputs come from the
step's dense output, smooth in t: dopri5 Shampine's quartic, order ≤ 3 cubic Hermite, and
tsit5/dopri8 (no dense output of their order here) one extra step of the method from the step's
start to the output time. Error ratio ``norm(err / (atol + rtol·max(|y₀|, |y₁|)))``, accept
iff ≤ 1 (or the step is at ``min_step``); I-controller ``dt·min(ifactor, max(safety·r^{−1/p}, dfactor))`` (no shrink bound
after an accepted step), p = the method's order. dopri8 uses Hairer's 5/3 error
``r₅² / sqrt(r₅² + 0.01·r₃²)``. ``step_t`` are times a step must land on; ``jump_t`` also
re-evaluates f just after the landing point (``perturb``), for discontinuities.
Events: after every accepted step the sign of ``event_fn`` is compared with its initial sign;
on a change the event time is bisected on the dense output to ``atol``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from odeattn.solve import hermite, make_stepper, mid_state, quartic, with_time_grads
from odeattn.tableau import DOP853_B3, parse_entry
from odeattn.torchdiffeq._func import rms_norm

__all__ = ["AdaptiveRK", "find_event", "warn_unused"]


def warn_unused(solver: str, unused: dict) -> None:
    if unused:
        warnings.warn(f"{solver}: Unexpected arguments {unused}", stacklevel=3)


def find_event(
    interp: Any, sign0: Tensor, t0: Tensor, t1: Tensor, event_fn: Any, tol: float
) -> tuple[Tensor, Tensor]:
    """Bisection of the sign change of ``event_fn`` on the dense output between t0 and t1."""
    with torch.no_grad():
        n = max(1, math.ceil(math.log(max(float(t1 - t0), 1e-300) / tol) / math.log(2.0)))
        for _ in range(n):
            tm = (t0 + t1) / 2
            same = torch.sign(event_fn(tm, interp(tm))) == sign0
            t0, t1 = torch.where(same, tm, t0), torch.where(same, t1, tm)
        t_ev = (t0 + t1) / 2
    return t_ev, interp(t_ev)


def _sorted_times(v: Any, name: str, dtype: torch.dtype, device: Any) -> Tensor:
    if v is None:
        return torch.empty(0, dtype=dtype, device=device)
    if not isinstance(v, Tensor):
        raise TypeError(
            f"`options[{name!r}]` must be a 1-D tensor of times, but got {type(v).__name__}"
        )
    return torch.unique(v.detach().to(dtype=dtype, device=device))  # sorted


class _EndPerturbed:
    """Stages at c = 1 see t₁ moved just before it (torchdiffeq), never a jump's far side."""

    __slots__ = ("end", "func")

    def __init__(self, func: Any, end: Tensor) -> None:
        self.func, self.end = func, end

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        return self.func(t, y, perturb=-1 if t is self.end else 0)


class AdaptiveRK:
    """One adaptive solve (torchdiffeq option names; see the module doc)."""

    def __init__(
        self,
        func: Any,
        y0: Tensor,
        rtol: Any,
        atol: Any,
        *,
        tableau: Any,
        first_step: Any = None,
        step_t: Any = None,
        jump_t: Any = None,
        safety: float = 0.9,
        ifactor: float = 10.0,
        dfactor: float = 0.2,
        max_num_steps: int = 2**31 - 1,
        min_step: float = 0.0,
        max_step: float = math.inf,
        norm: Any = None,
        dtype: torch.dtype = torch.float64,
        **unused: Any,
    ) -> None:
        warn_unused(type(self).__name__, unused)
        self.func, self.y0, self.tab, self.dtype = func, y0, tableau, dtype
        self.rtol = rtol if not isinstance(rtol, Tensor) else rtol.to(y0.device, y0.real.dtype)
        self.atol = atol if not isinstance(atol, Tensor) else atol.to(y0.device, y0.real.dtype)
        self.stepper = make_stepper(tableau, 1e-7, 1e-9, {})
        self.first_step, self.norm = first_step, norm or rms_norm
        self.record: list | None = None  # accepted steps, for odeint_dense
        self.safety, self.ifactor, self.dfactor = float(safety), float(ifactor), float(dfactor)
        self.max_num_steps, self.min_step, self.max_step = (
            int(max_num_steps),
            float(min_step),
            float(max_step),
        )
        self.step_t = _sorted_times(step_t, "step_t", dtype, y0.device)
        self.jump_t = _sorted_times(jump_t, "jump_t", dtype, y0.device)
        self.mid = tableau.b_mid
        self.mid = tuple(map(float, self.mid)) if self.mid is not None else None
        self.b3 = None
        if tableau.name == "dopri8":
            self.b3 = [float(b) - float(parse_entry(x)[0]) for b, x in zip(tableau.b, DOP853_B3)]

    # -- setup --------------------------------------------------------------------------------
    def _start(self, t0: Tensor) -> None:
        y0 = self.y0
        self.f0 = self.func(t0, y0)
        if self.first_step is None:
            dt = self._initial_step(t0, y0, self.f0)
        else:
            dt = torch.as_tensor(self.first_step, dtype=self.dtype, device=y0.device)
        self.t0, self.t1, self.y_0, self.y_1, self.dt = t0, t0, y0, y0, dt
        self.f_0 = self.f_1 = self.f0
        self.ks: list[Tensor] = []
        self.n_steps = 0
        self.next_step = self.next_jump = 0

    @torch.no_grad()
    def _initial_step(self, t0: Tensor, y0: Tensor, f0: Tensor) -> Tensor:
        """Hairer, Nørsett & Wanner I, §II.4 (with the solver's norm)."""
        scale = self.atol + y0.abs() * self.rtol
        d0, d1 = float(self.norm(y0 / scale)), float(self.norm(f0 / scale))
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        f1 = self.func(t0 + h0, y0 + h0 * f0)
        d2 = float(self.norm((f1 - f0) / scale)) / h0
        if d1 <= 1e-15 and d2 <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** (1.0 / (self.tab.order + 1))
        return torch.tensor(min(100 * h0, h1), dtype=self.dtype, device=y0.device)

    # -- one step -----------------------------------------------------------------------------
    def _ratio(self, err: Tensor, y0: Tensor, y1: Tensor, ks: list[Tensor], dt: Tensor) -> Tensor:
        tol = self.atol + self.rtol * torch.maximum(y0.detach().abs(), y1.detach().abs())
        r = torch.as_tensor(self.norm(err.detach() / tol))
        if self.b3 is not None:
            e3 = sum(w * k.detach() for w, k in zip(self.b3, ks) if w != 0) * dt.to(y0.dtype)
            r3 = torch.as_tensor(self.norm(e3 / tol))
            den = (r * r + 0.01 * r3 * r3).sqrt()
            r = torch.where(den > 0, r * r / den, r)
        return r.abs()

    def _clip(self, t0: Tensor, dt: Tensor) -> tuple[Tensor, Tensor | None, bool]:
        """Step size within [min_step, max_step], shortened to land on the next step_t/jump_t
        (returned, so the step ends on it exactly), and whether that landmark is a jump."""
        dt = dt.clamp(min=self.min_step, max=self.max_step)
        land, jump = None, False
        if self.next_step < len(self.step_t) and t0 + dt >= self.step_t[self.next_step]:
            land = self.step_t[self.next_step]
        nj = self.jump_t[self.next_jump] if self.next_jump < len(self.jump_t) else None
        if nj is not None and t0 + dt >= nj and (land is None or nj <= land):
            land, jump = nj, True
        return (dt if land is None else land - t0), land, jump

    def _advance_landmarks(self, t1: Tensor) -> None:
        while self.next_step < len(self.step_t) and self.step_t[self.next_step] <= t1:
            self.next_step += 1
        while self.next_jump < len(self.jump_t) and self.jump_t[self.next_jump] <= t1:
            self.next_jump += 1

    def _step(self) -> None:
        if self.n_steps >= self.max_num_steps:
            raise AssertionError(f"max_num_steps exceeded ({self.max_num_steps})")
        self.n_steps += 1
        t0, y0, f0 = self.t1, self.y_1, self.f_1
        dt, land, jump = self._clip(t0, self.dt)
        self.func.callback_step(t0, y0, dt)
        k1 = f0 if self.stepper._k1_ok else None
        nodes = [t0 + c * dt if c != 1 else t0 + dt for c in self.stepper.cs]
        ends = [n for c, n in zip(self.stepper.cs, nodes) if c == 1]
        f = _EndPerturbed(self.func, ends[0]) if ends else self.func
        y1, err, ks = self.stepper.step(f, t0, y0, dt, k1=k1, nodes=nodes)
        r = self._ratio(err, y0, y1, ks, dt)
        accept = bool(r <= 1) or float(dt) <= self.min_step
        rf = float(r)
        if rf == 0:
            factor = self.ifactor
        else:  # an accepted step never shrinks the next one
            lo = 1.0 if rf < 1 else self.dfactor
            factor = min(self.ifactor, max(self.safety * rf ** (-1.0 / self.tab.order), lo))
        if not accept:
            self.func.callback_reject_step(t0, y0, dt)
            self.dt = dt * factor
            return
        self.func.callback_accept_step(t0, y0, dt)
        t1 = t0 + dt if land is None else land
        if jump:
            f1 = self.func(t1, y1, perturb=1)
        elif self.tab.fsal:
            f1 = ks[-1]
        else:
            f1 = self.func(t1, y1)
        self._advance_landmarks(t1)
        self.t0, self.y_0, self.f_0, self.ks = t0, y0, f0, ks
        self.t1, self.y_1, self.f_1 = t1, y1, f1
        if self.record is not None:
            self.record.append(self.segment())
        self.dt = dt * factor

    # -- outputs ------------------------------------------------------------------------------
    def segment(self) -> tuple:
        """The last accepted step: (t0, t1, y0, y1, f0, f1, ks)."""
        return (self.t0, self.t1, self.y_0, self.y_1, self.f_0, self.f_1, self.ks)

    def interp(self, t: Tensor, seg: tuple | None = None) -> Tensor:
        t0, t1, y0, y1, f0, f1, ks = self.segment() if seg is None else seg
        if t1 == t0 or t == t1:
            return y1
        h = t1 - t0
        theta = ((t - t0) / h).to(y0.real.dtype)
        hh = h.to(y0.real.dtype)
        hf0, hf1 = hh * f0, hh * f1
        if self.mid is not None:
            return quartic(theta, y0, y1, hf0, hf1, mid_state(y0, hh, ks, self.mid))
        if self.tab.order >= 4:  # no dense output of the method's order: re-step from t0 to t
            return self.stepper.step(
                self.func, t0, y0, t - t0, k1=f0 if self.stepper._k1_ok else None
            )[0]
        return hermite(theta, y0, y1, hf0, hf1)

    def integrate(self, t: Tensor) -> Tensor:
        """Outputs at t; gradients w.r.t. t are those of the exact flow (odeattn._time_grad)."""
        return with_time_grads(self._integrate, self.func, self.y0, t.to(self.dtype))

    def _integrate(self, y0: Tensor, t: Tensor) -> Tensor:
        self.y0 = y0
        self._start(t[0])
        out = [self.y0]
        for ti in t[1:]:
            while ti > self.t1:
                self._step()
            out.append(self.interp(ti))
        return torch.stack(out)

    def integrate_until_event(self, t0: Tensor, event_fn: Any, tol: float) -> tuple[Tensor, Tensor]:
        self._start(t0.to(self.dtype))
        sign0 = torch.sign(event_fn(self.t1, self.y_1))
        while True:
            self._step()
            if torch.any(torch.sign(event_fn(self.t1, self.y_1)) != sign0):
                break
        t_ev, y_ev = find_event(self.interp, sign0, self.t0, self.t1, event_fn, tol)
        return t_ev, torch.stack([self.y0, y_ev])
