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

from dataclasses import dataclass
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


@dataclass
class _Batch:
    """The per-sample state of the integration: every field has the batch as dim 0."""

    t: Tensor  # (B,) float64 time of each sample
    y: Tensor  # (B, ...) state
    y_abs: Tensor  # |y|, for the error scale
    f0: Tensor  # f(t, y): the next step's first stage
    h: Tensor  # (B,) proposed step
    r_prev: Tensor  # (B,) previous error ratio (PI controller)
    n_acc: Tensor  # (B,) accepted steps
    n_rej: Tensor  # (B,) rejected steps


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
    acc0 = torch.zeros(n, dtype=torch.long, device=y.device)
    ones = torch.ones(n, dtype=y.dtype, device=y.device)
    b = _Batch(t_out[0].expand(n).clone(), y, y.detach().abs(), f0, h, ones, acc0, acc0.clone())
    ys, iters = [y], 0
    for target in t_out[1:]:
        while bool((b.t < target).any()):  # the one host sync of the iteration
            iters += 1
            if iters > max_steps:
                raise RuntimeError(
                    f"odeint: `max_num_steps`={max_steps} reached (per-sample "
                    f"mode) before t={float(target)}; raise it or rtol/atol"
                )
            _advance(stepper, f, b, target, fsal, cfg)
        ys.append(b.y)
    stats.accepted_per_sample, stats.rejected_per_sample = b.n_acc, b.n_rej
    stats.accepted, stats.rejected = int(b.n_acc.sum()), int(b.n_rej.sum())
    return torch.stack(ys)


def _advance(
    stepper: Any, f: Any, b: _Batch, target: Tensor, fsal: bool, cfg: ControllerConfig
) -> None:
    """One attempted step of every sample still short of ``target`` (finished ones step by 0)."""
    active = b.t < target  # (B,)
    rem = target - b.t
    clipped = b.h >= rem
    dt = torch.minimum(b.h, rem)  # 0 for finished samples
    y1, err, ks = stepper.step(f, b.t, b.y, dt.to(b.y.dtype), k1=b.f0)
    with torch.no_grad():
        y1_abs = y1.detach().abs()
        ratio = _ratio(err.detach(), b.y_abs, y1_abs, cfg)
        accept, h_next, r_next = pi_update(dt, ratio, b.r_prev, cfg)
        acc = accept & active
        h_next = torch.where(acc & clipped, torch.maximum(h_next, b.h), h_next)
        b.h = torch.where(active, h_next, b.h)
        b.r_prev = torch.where(active, r_next, b.r_prev)
        b.n_acc += acc
        b.n_rej += active & ~accept
        b.t = torch.where(acc, torch.where(clipped, target, b.t + dt), b.t)
    m = _bc(acc, b.y)
    b.y = torch.where(m, y1, b.y)
    b.y_abs = torch.where(m, y1_abs, b.y_abs)
    b.f0 = torch.where(m, ks[-1], b.f0) if fsal else f(b.t, b.y)
