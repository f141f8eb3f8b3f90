"""The adaptive step loop of ``odeint`` (shared step for the whole batch).

Per attempted step: one ``Stepper.step`` (FSAL: k1 is the previous last stage), the error ratio
and the PI controller on 0-d tensors (``odeattn.solve._controller``; accept/reject is a tensor mask
that selects the new time), and one host sync of the new time, which drives the loop, the
outputs and the counters. Steps are clipped so that they never pass ``t[-1]`` (and, in "clip"
mode, each output time); a step that lands is snapped to the output time exactly. Outputs
inside a step come from dense output (``odeattn.solve._interp``). Reverse time integrates s = −t.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from odeattn.solve import _interp
from odeattn.solve._controller import ControllerConfig, error_ratio, initial_step, pi_update
from odeattn.solve._per_sample import solve_per_sample

__all__ = ["Counted", "solve_adaptive"]


class Counted:
    """``func`` with an evaluation counter; hands it the time in ``dtype`` (the state's dtype:
    a float64 time next to float32 features costs f a promotion on every use)."""

    __slots__ = ("dtype", "f", "n")

    def __init__(
        self, f: Callable[[Tensor, Tensor], Tensor], dtype: torch.dtype | None = None
    ) -> None:
        self.f, self.n, self.dtype = f, 0, dtype

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        self.n += 1
        if self.dtype is not None and t.dtype != self.dtype:
            t = t.to(self.dtype)
        return self.f(t, y)


def solve_adaptive(
    stepper: Any,
    f: Counted,
    y0: Tensor,
    tt: Tensor,
    times: list[float],
    tab: Any,
    opts: dict,
    rtol: float,
    atol: float,
    stats: Any,
) -> Tensor:
    """Adaptive solve of ``y' = f(t, y)`` through the output times ``tt`` (embedded pair + PI)."""
    if times[-1] < times[0]:  # integrate s = -t forward: dy/ds = -f(-s, y)
        g = Counted(lambda s, y: -f.f(-s, y), f.dtype)
        out = solve_adaptive(stepper, g, y0, -tt, [-v for v in times], tab, opts, rtol, atol, stats)
        f.n += g.n
        return out
    cfg = _controller(tab, opts, rtol, atol)
    per_sample = bool(opts.get("per_sample", False))
    if per_sample and y0.dim() == 0:
        raise ValueError("options['per_sample'] needs a batch dim 0 in y0, but y0 is 0-d")
    max_steps = int(opts.get("max_num_steps", 2**31 - 1))
    f0 = f(tt[0], y0)
    h = _first_step(f, tt, y0, f0, tab, cfg, opts, per_sample)
    if per_sample:
        ts = list(tt.unbind(0))
        return solve_per_sample(stepper, f, y0, f0, h, ts, tab.fsal, cfg, stats, max_steps)
    interp, mid = _interp_mode(tab, opts)
    loop = _AdaptiveLoop(
        stepper, f, tt, times, tab.fsal, cfg, mid, interp == "clip", stats, max_steps
    )
    return loop.run(y0, f0, h)


def _controller(tab: Any, opts: dict, rtol: float, atol: float) -> ControllerConfig:
    """PI controller for the pair's lower order q: exponents from k = q + 1."""
    order = min(tab.order, tab.err_order if tab.err_order is not None else tab.order)
    keys = ("safety", "ifactor", "dfactor", "pcoeff", "icoeff", "max_step")
    given = {k: float(opts[k]) for k in keys if k in opts}
    return ControllerConfig(rtol=rtol, atol=atol, k=order + 1, **given)


def _interp_mode(tab: Any, opts: dict) -> tuple[str, tuple[float, ...] | None]:
    """("quartic" | "hermite" | "clip", mid-point weights): see the module docstring of _odeint."""
    interp = opts.get("interp", "auto")
    if interp != "auto":
        return interp, None
    if tab.b_mid is not None:  # the tableau's own dense output at h/2 (dopri5: Shampine)
        return "quartic", tuple(map(float, tab.b_mid))
    return ("hermite" if tab.order <= 3 else "clip"), None


def _first_step(
    f: Counted, tt: Tensor, y0: Tensor, f0: Tensor, tab: Any, cfg: Any, opts: dict, per: bool
) -> Tensor:
    """``options["first_step"]``, else Hairer's initial step selection (per sample if ``per``)."""
    if "first_step" in opts:
        h = torch.full_like(tt[0], float(opts["first_step"]))
        return h.expand(y0.shape[0]).clone() if per else h
    with torch.no_grad():
        span = (tt[-1] - tt[0]).detach()
        return initial_step(
            f, tt[0].detach(), y0.detach(), f0.detach(), tab.order, cfg, span, per_sample=per
        )


class _AdaptiveLoop:
    """The accept/reject loop of one adaptive solve (state lives in ``run``'s locals)."""

    def __init__(self, stepper, f, tt, times, fsal, cfg, mid, clip, stats, max_steps) -> None:
        self.stepper, self.f, self.tt, self.times, self.fsal = stepper, f, tt, times, fsal
        self.cfg, self.mid, self.clip, self.stats, self.max_steps = cfg, mid, clip, stats, max_steps

    def run(self, y: Tensor, f0: Tensor, h: Tensor) -> Tensor:
        tt, times, cfg, stats = self.tt, self.times, self.cfg, self.stats
        t_out = tt.unbind(0)
        t, t_host, j = t_out[0], times[0], 1
        ys = [y]
        y_abs = y.detach().abs()
        r_prev = torch.ones((), dtype=y.dtype, device=y.device)
        streak = 0
        while j < len(times):
            if stats.accepted + stats.rejected >= self.max_steps:
                raise RuntimeError(
                    f"odeint: `max_num_steps`={self.max_steps} reached at t={t_host} "
                    f"before t={times[-1]}; raise options['max_num_steps'] or rtol/atol"
                )
            jt = j if self.clip else len(times) - 1  # the step may not pass this output time
            dt = torch.minimum(h, t_out[jt] - t)
            y1, err, ks = self.stepper.step(self.f, t, y, dt, k1=f0)
            with torch.no_grad():
                y1_abs = y1.detach().abs()
                r = error_ratio(err.detach(), y_abs, y1_abs, cfg.rtol, cfg.atol)
                accept, h_next, r_prev = pi_update(dt, r, r_prev, cfg)
                t1 = t + dt
                t_new_host = torch.where(accept, t1, t).item()  # the one host sync of the step
            if t_new_host == t_host:
                h = h_next
                stats.rejected += 1
                streak += 1
                if streak > 60:
                    raise RuntimeError(
                        f"odeint: 60 rejected steps in a row at t={t_host} (step "
                        f"{dt.item():.3g}); f may be non-finite or the ODE stiff"
                    )
                continue
            streak, stats.accepted = 0, stats.accepted + 1
            if t_new_host >= times[jt] - 4 * math.ulp(times[jt]):  # landed: snap to it exactly
                t1, t_new_host = t_out[jt], times[jt]
                h = torch.maximum(h_next, h)  # keep the proposal the step was clipped from
            else:
                h = h_next
            f1 = ks[-1] if self.fsal else self.f(t1, y1)
            while j < len(times) and times[j] <= t_new_host:
                ys.append(
                    y1
                    if times[j] == t_new_host
                    else self._dense(t_out[j], t, dt, y, y1, f0, f1, ks)
                )
                j += 1
            t, t_host, y, y_abs, f0 = t1, t_new_host, y1, y1_abs, f1
        return torch.stack(ys)

    def _dense(self, t_out, t0, dt, y0, y1, f0, f1, ks) -> Tensor:
        theta = ((t_out - t0) / dt).to(y0.dtype)
        h = dt.to(y0.dtype)
        if self.mid is not None:
            y_mid = _interp.mid_state(y0, h, ks, self.mid)
            return _interp.quartic(theta, y0, y1, h * f0, h * f1, y_mid)
        return _interp.hermite(theta, y0, y1, h * f0, h * f1)
