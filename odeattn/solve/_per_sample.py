"""Per-sample adaptive step sizes (torchode semantics): every sample of the batch dim 0 has its own
time t_b, step h_b, PI-controller state and accept/reject decision, so a sample's solution does not
depend on what else is in the batch (batch-independent step counts).

Each iteration evaluates f on the whole batch with the step vector ``h`` of shape ``(B,)`` (f gets
a ``(B,)`` time); finished or rejected samples are masked with ``torch.where``. Steps are clipped
to land exactly on every output time; a sample that has reached the current output time waits
(step 0) until all have. The cost is B × max_b(steps_b) stage evaluations, as in torchode.
One host sync per iteration (``any(t_b < t_out)``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from odeattn.solve._controller import ControllerConfig, pi_update

__all__ = ["solve_per_sample"]


def _bc(v: Tensor, like: Tensor) -> Tensor:
    """(B,) -> (B, 1, ..., 1) to broadcast against ``like``."""
    return v.reshape(v.shape + (1,) * (like.dim() - 1))


def _ratio(err: Tensor, y0_abs: Tensor, y1_abs: Tensor, cfg: ControllerConfig) -> Tensor:
    """Per-sample RMS of err / (atol + rtol max(|y0|, |y1|)): (B,)."""
    scale = torch.maximum(y0_abs, y1_abs).mul_(cfg.rtol).add_(cfg.atol)
    q = (err / scale).reshape(err.shape[0], -1)
    return torch.linalg.vector_norm(q, dim=1) * (q.shape[1] ** -0.5)


def solve_per_sample(
    stepper: Any,
    f: Any,
    y: Tensor,
    f0: Tensor,
    h: Tensor,
    t_out: list[Tensor],
    fsal: bool,
    cfg: ControllerConfig,
    stats: Any,
    max_steps: int,
) -> Tensor:
    """Integrate through the output times ``t_out`` (0-d float64 tensors, increasing)."""
    n = y.shape[0]
    t = t_out[0].expand(n).clone()  # (B,)
    r_prev = torch.ones(n, dtype=y.dtype, device=y.device)
    n_acc = torch.zeros(n, dtype=torch.long, device=y.device)
    n_rej = torch.zeros_like(n_acc)
    y_abs, ys, iters = y.detach().abs(), [y], 0
    for target in t_out[1:]:
        while True:
            active = t < target  # (B,)
            if not bool(active.any()):  # the one host sync of the iteration
                break
            iters += 1
            if iters > max_steps:
                raise RuntimeError(
                    f"odeint: `max_num_steps`={max_steps} reached (per-sample "
                    f"mode) before t={float(target)}; raise it or rtol/atol"
                )
            rem = target - t
            clipped = h >= rem
            dt = torch.minimum(h, rem)  # 0 for finished samples
            y1, err, ks = stepper.step(f, t, y, dt.to(y.dtype), k1=f0)
            with torch.no_grad():
                y1_abs = y1.detach().abs()
                accept, h_next, r_next = pi_update(
                    dt, _ratio(err.detach(), y_abs, y1_abs, cfg), r_prev, cfg
                )
                acc = accept & active
                h_next = torch.where(acc & clipped, torch.maximum(h_next, h), h_next)
                h = torch.where(active, h_next, h)
                r_prev = torch.where(active, r_next, r_prev)
                n_acc += acc
                n_rej += active & ~accept
                t = torch.where(acc, torch.where(clipped, target, t + dt), t)
            m = _bc(acc, y)
            y = torch.where(m, y1, y)
            y_abs = torch.where(m, y1_abs, y_abs)
            f0 = torch.where(m, ks[-1], f0) if fsal else f(t, y)
        ys.append(y)
    stats.accepted_per_sample, stats.rejected_per_sample = n_acc, n_rej
    stats.accepted, stats.rejected = int(n_acc.sum()), int(n_rej.sum())
    return torch.stack(ys)
