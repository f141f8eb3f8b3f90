"""The linear-ODE view of stiffness: SI, SAI along real solves, and StepNet's Theorem 2.

For u′ = A u the Jacobian is A everywhere, so the stiffness index (Aiken 1985; StepNet Sec. 2.1.2)

    SI = max_i |Re λ_i(A)|

is a constant, and the stiffness-aware index of discrete observations u^{t_i} (StepNet Eq. 3)

    SAI(u^{t_i}) = ‖(u^{t_{i+1}} − u^{t_i}) / (t_{i+1} − t_i)‖₂ / ‖u^{t_i}‖₂

can be taken along a trajectory computed by :func:`odeattn.odeint`. For symmetric A = Q diag(λ) Qᵀ
and u = u^{t_i}, with weights w_j = (q_jᵀ u)² / ‖u‖² and spacing h, it has the closed form

    SAI = sqrt(Σ_j w_j ((e^{λ_j h} − 1) / h)²)  →  sqrt(Σ_j w_j λ_j²)   (h → 0),

so SAI / SI → sqrt(w_1 + Σ_{j>1} w_j (λ_j / SI)²) = sqrt(c + Q(SI)) with c = w_1 (the weight of
the stiffest mode) and Q(SI) → 0 as SI grows: Theorem 2 (Eq. 11), provided h · SI ≪ 1. When
h · SI is not small, (e^{λh} − 1)/h saturates at 1/h and SAI stops tracking SI; the table from
:func:`examine_theorem2` shows both regimes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from odeattn.solve import odeint

__all__ = [
    "exact_sai",
    "examine_theorem2",
    "sai",
    "solve_linear",
    "stiffness_index",
    "symmetric_system",
]


def stiffness_index(a: Any) -> float:
    """SI = max |Re λ| of a square matrix (the Jacobian of u′ = A u)."""
    m = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.size == 0:
        raise ValueError(f"`a` must be a square matrix, but got shape {m.shape}")
    return float(np.abs(np.linalg.eigvals(m).real).max())


def symmetric_system(eigenvalues: Sequence[float], *, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(A, Q): A = Q diag(λ) Qᵀ (float64) with a seeded random orthogonal Q (columns q_j)."""
    lam = torch.as_tensor(list(eigenvalues), dtype=torch.float64)
    if lam.ndim != 1 or lam.numel() == 0 or not bool(torch.isfinite(lam).all()):
        raise ValueError(
            f"`eigenvalues` must be a non-empty list of finite reals, but got {eigenvalues!r}"
        )
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(lam.numel(), lam.numel(), generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))  # unique (Haar) orthogonal factor
    return (q * lam) @ q.T, q


def solve_linear(a: Tensor, y0: Tensor, t: Tensor | Sequence[float], **kwargs: Any) -> Tensor:
    """u(t) for u′ = A u, u(t_0) = y0 by :func:`odeattn.odeint` (kwargs go to it); (T, *y0.shape)."""

    a = torch.as_tensor(a, dtype=y0.dtype, device=y0.device)
    return odeint(lambda _t, y: y @ a.T, y0, t, **kwargs)


def sai(trajectory: Tensor, t: Tensor | Sequence[float]) -> Tensor:
    """Eq. 3 at every observation but the last: (T − 1, *batch); the state is the last dim."""
    u = torch.as_tensor(trajectory)
    tt = torch.as_tensor(t, dtype=u.dtype, device=u.device)
    if u.ndim < 2 or tt.ndim != 1 or tt.numel() != u.shape[0] or tt.numel() < 2:
        raise ValueError(
            f"`trajectory` must be (T, ..., n) with T = len(t) ≥ 2, but got {tuple(u.shape)} and "
            f"len(t)={tt.numel()}"
        )
    h = (tt[1:] - tt[:-1]).reshape(-1, *([1] * (u.ndim - 1)))  # (T − 1, 1, ..., 1)
    return torch.linalg.vector_norm((u[1:] - u[:-1]) / h, dim=-1) / torch.linalg.vector_norm(
        u[:-1], dim=-1
    )


def exact_sai(eigenvalues: Sequence[float], weights: Sequence[float], h: float) -> float:
    """Closed-form SAI of a symmetric linear system over one spacing h (h = 0: the limit)."""
    lam, w = np.asarray(eigenvalues, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    rate = lam if h == 0 else np.expm1(lam * h) / h
    return float(math.sqrt(np.sum(w * rate**2)))


def examine_theorem2(
    stiffness_indices: Sequence[float],
    *,
    others: Sequence[float] = (-1.0, -0.5, -0.2),
    h: float | None = None,
    method: str = "dopri5",
    rtol: float = 1e-10,
    atol: float = 1e-12,
    seed: int = 0,
) -> list[dict[str, float]]:
    """SAI against SI on real solves of u′ = A u, A with eigenvalues (−SI, *others).

    For each SI the same eigenvectors and the same u_0 are used, so c = w_1 is fixed. Each row has
    ``si``; ``sai`` (Eq. 3 over the first spacing of an :func:`odeattn.odeint` solve) and
    ``sai_exact`` (closed form); ``ratio`` = sai / si; ``sqrt_c`` = sqrt(w_1); ``q`` = ratio² − c
    (Theorem 2's Q(SI)); ``h_si`` = h · SI. ``h`` defaults to 1e-3 / max(SI) (the regime where
    the theorem applies).
    """
    si = [float(s) for s in stiffness_indices]
    if not si or min(si) <= 0:
        raise ValueError(f"`stiffness_indices` must be positive, but got {stiffness_indices!r}")
    h = 1e-3 / max(si) if h is None else float(h)
    g = torch.Generator().manual_seed(seed + 1)
    y0 = torch.randn(len(others) + 1, generator=g, dtype=torch.float64)
    rows = []
    for s in si:
        lam = [-s, *others]
        a, q = symmetric_system(lam, seed=seed)
        w = ((q.T @ y0) ** 2 / (y0 @ y0)).tolist()
        traj = solve_linear(a, y0, [0.0, h], method=method, rtol=rtol, atol=atol)
        value = float(sai(traj, [0.0, h])[0])
        true_si, stiff = (
            stiffness_index(a),
            int(np.argmax(np.abs(lam))),
        )  # the −s mode once s ≥ |others|
        ratio = value / true_si
        rows.append(
            {
                "si": true_si,
                "sai": value,
                "sai_exact": exact_sai(lam, w, h),
                "ratio": ratio,
                "sqrt_c": math.sqrt(w[stiff]),
                "q": ratio**2 - w[stiff],
                "h_si": h * true_si,
            }
        )
    return rows
