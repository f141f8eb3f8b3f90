"""Step-size control for embedded Runge–Kutta pairs: error norm, PI controller, initial step.

All quantities stay tensors (no host syncs): the accept/reject decision is a boolean tensor mask
and the next step is computed with ``torch.where`` / ``clamp``, so the same code serves a shared
step (0-d tensors) and per-sample steps (``(B,)`` tensors).

- Error ratio (Hairer, Nørsett & Wanner I, II.4, eq. 4.11): with the embedded estimate
  ``err = h Σ (b_i − b̂_i) k_i`` and ``sc = atol + rtol · max(|y_n|, |y_{n+1}|)``,
  ``r = sqrt(mean((err / sc)²))`` (RMS norm; over all elements, or per sample).
  The step is accepted iff ``r ≤ 1``; a NaN/inf ratio is a rejection.
- PI controller (Söderlind 2003, eq. 34 with k_D = 0; Hairer II.4 eq. 4.37 is the case
  k_P = β k): ``fac = safety · r_n^{−(k_I + k_P)/k} · r_{n−1}^{k_P/k}`` with ``k = q + 1``,
  q the order of the error estimate. After an accepted step ``fac ∈ [1, ifactor]`` (accepted steps
  never shrink), after a rejection ``fac ∈ [dfactor, safety]`` (diffrax's clamps). ``r_{n−1}``
  is updated only on accepted steps. Defaults k_P = 0.2, k_I = 0.65 are Hairer's DOPRI5 values
  (β = 0.04) written in Söderlind's form; ``pcoeff=0`` gives the classic I controller.
- Initial step (Hairer I, II.4, "starting step size" algorithm): one extra f-evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ControllerConfig", "error_ratio", "initial_step", "pi_update"]


@dataclass(frozen=True)
class ControllerConfig:
    rtol: float
    atol: float
    k: float  # error order + 1
    safety: float = 0.9
    ifactor: float = 10.0
    dfactor: float = 0.2
    pcoeff: float = 0.2
    icoeff: float = 0.65
    max_step: float = float("inf")


def _rms(x: Tensor, per_sample: bool) -> Tensor:
    if per_sample:  # (B, ...) -> (B,)
        return x.reshape(x.shape[0], -1).pow(2).mean(dim=1).sqrt()
    return x.pow(2).mean().sqrt()


def error_ratio(err: Tensor, y0_abs: Tensor, y1_abs: Tensor, rtol: float, atol: float) -> Tensor:
    """RMS of ``err / (atol + rtol·max(|y0|, |y1|))`` over all elements (0-d tensor).

    Takes ``|y0|`` and ``|y1|`` so the loop can reuse ``|y1|`` as the next step's ``|y0|``.
    """
    scale = torch.maximum(y0_abs, y1_abs).mul_(rtol).add_(atol)
    return torch.linalg.vector_norm(err / scale) * (err.numel() ** -0.5)


def pi_update(
    h: Tensor, r: Tensor, r_prev: Tensor, cfg: ControllerConfig
) -> tuple[Tensor, Tensor, Tensor]:
    """Return ``(accept, h_next, r_prev_next)`` as tensors, from the step ``h`` and ratio ``r``.

    A NaN or inf ratio (f blew up) is a rejection with the smallest factor ``dfactor``.
    """
    r = torch.nan_to_num(r, nan=float("inf"))
    accept = r <= 1.0
    r_safe = r.clamp(min=1e-10)  # r = 0 -> the maximal increase
    fac = r_safe.pow(-(cfg.icoeff + cfg.pcoeff) / cfg.k)
    if cfg.pcoeff != 0.0:
        fac = fac * r_prev.pow(cfg.pcoeff / cfg.k)
        r_prev = torch.where(accept, r_safe, r_prev)
    fac = fac * cfg.safety
    fac = torch.where(accept, fac.clamp(1.0, cfg.ifactor), fac.clamp(cfg.dfactor, cfg.safety))
    h_next = h * fac
    if cfg.max_step != float("inf"):
        h_next = h_next.clamp(max=cfg.max_step)
    return accept, h_next, r_prev


def initial_step(
    f,
    t0: Tensor,
    y0: Tensor,
    f0: Tensor,
    order: int,
    cfg: ControllerConfig,
    span: Tensor,
    per_sample: bool = False,
) -> Tensor:
    """Hairer's starting step size (one evaluation of f), capped at the integration span.

    ``d0 = ‖y0‖, d1 = ‖f0‖`` (scaled RMS norms), ``h0 = 0.01 d0/d1`` (1e-6 if either is tiny),
    ``d2 = ‖f(t0 + h0, y0 + h0 f0) − f0‖ / h0``, ``h1 = (0.01 / max(d1, d2))^{1/order}``
    (``max(1e-6, 1e-3 h0)`` if both are tiny), ``h = min(100 h0, h1, span, max_step)``.
    """
    scale = y0.abs().mul(cfg.rtol).add(cfg.atol)
    d0 = _rms(y0 / scale, per_sample).to(t0.dtype)  # () or (B,)
    d1 = _rms(f0 / scale, per_sample).to(t0.dtype)
    h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1.clamp(min=1e-300))
    h0 = torch.minimum(h0, span)
    hb = h0.to(y0.dtype).reshape(h0.shape + (1,) * (y0.dim() - h0.dim()))
    f1 = f(t0 + h0, y0 + hb * f0)
    d2 = _rms((f1 - f0) / scale, per_sample).to(t0.dtype) / h0
    dmax = torch.maximum(d1, d2)
    h1 = torch.where(
        dmax <= 1e-15,
        torch.clamp(h0 * 1e-3, min=1e-6),
        (0.01 / dmax.clamp(min=1e-300)).pow(1.0 / order),
    )
    return torch.minimum(torch.minimum(100 * h0, h1), span).clamp(max=cfg.max_step)
