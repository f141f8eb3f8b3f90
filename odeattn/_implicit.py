"""Implicit stage equations: Newton or fixed-point iteration with rtol/atol-tied stopping.

For an implicit tableau the stage derivatives K = (k_1, …, k_s) solve K = F(K) with

    F(K)_i = f(t + c_i h, y + h Σ_j a_ij k_j).

``"newton"``: Newton's method on G(K) = K − F(K) with the exact Jacobian: every iteration forms
the stage Jacobians J_i = ∂f/∂y(t_i, Z_i) (``torch.autograd.functional.jacobian`` over the whole
state, N = y.numel() unknowns, so this is meant for small states: s·N ≤ ``dense_limit``) and
solves the dense (sN)×(sN) system M ΔK = −G, M_ij = δ_ij I − a_ij diag(h) J_i. Quadratic
convergence, robust for stiff problems. ``"fixed_point"``: K ← F(K), one f-eval per stage per
iteration, no Jacobian, any state size; converges iff h·Lip(f)·ρ(|A|) < 1 (non-stiff blocks).

Stopping (Hairer–Wanner II, §IV.8): with e_n = max_i RMS(h Δk_i / (atol + rtol·|y|)) and the
observed contraction θ = e_n / e_{n−1}, stop when e_n·θ/(1 − θ) ≤ κ = 0.03, i.e. the remaining
stage error is a small fraction of the step tolerance; there is no fixed accuracy floor. A
diverging or non-converged solve raises :class:`StageSolveError` (never a silent result).

Gradients use the implicit function theorem: the converged K* is re-evaluated once with
autograd, K = F(K*), and a hook maps the incoming gradient g to λ = (I − ∂F/∂K)^{−T} g
(dense solve when s·N ≤ dense_limit, else the fixed-point iteration λ ← g + (∂F/∂K)^T λ).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from odeattn._kernel import Plan, node, shift

__all__ = ["KAPPA", "StageSolveError", "solve_stages"]

KAPPA = 0.03
Func = Callable[[Tensor, Tensor], Tensor]


class StageSolveError(RuntimeError):
    """The implicit stage equations did not converge to the requested tolerance."""


def _stage_inputs(plan: Plan, y: Tensor, ks: list[Tensor], hb: Tensor) -> list[Tensor]:
    return [shift(y, plan.rows[i], ks, hb) for i in range(plan.stages)]


def _apply(f: Func, plan: Plan, ts: list[Tensor], y: Tensor, ks: list[Tensor],
           hb: Tensor) -> list[Tensor]:
    return [f(ts[i], z) for i, z in enumerate(_stage_inputs(plan, y, ks, hb))]


def _dense_matrix(f: Func, plan: Plan, ts: list[Tensor], y: Tensor, ks: list[Tensor],
                  hb: Tensor) -> Tensor:
    """M = I − ∂F/∂K as an (sN)×(sN) matrix, M_ij = δ_ij I − a_ij diag(h) J_i."""
    s, n = plan.stages, y.numel()
    hvec = hb.expand_as(y).reshape(n)
    m = torch.eye(s * n, dtype=y.dtype, device=y.device)
    for i, z in enumerate(_stage_inputs(plan, y, ks, hb)):
        with torch.enable_grad():
            jac = torch.autograd.functional.jacobian(
                lambda v, t=ts[i]: f(t, v.reshape(y.shape)).reshape(n), z.detach().reshape(n))
        for j, a in plan.rows[i]:
            m[i * n:(i + 1) * n, j * n:(j + 1) * n] -= a * hvec[:, None] * jac
    return m


def _scaled(dks: list[Tensor], y: Tensor, hb: Tensor, rtol: float, atol: float) -> float:
    scale = atol + rtol * y.abs()
    return max(float(((hb * d) / scale).pow(2).mean().sqrt()) for d in dks)


def solve_stages(f: Func, t: Tensor, y: Tensor, h: Tensor, hb: Tensor, plan: Plan, *,
                 rtol: float, atol: float, method: str, max_iter: int, dense_limit: int,
                 k1: Tensor | None = None) -> list[Tensor]:
    """Stage derivatives k_1..k_s of one implicit step (see the module docstring)."""
    ts = [node(t, c, h) for c in plan.c]
    dense = method == "newton"
    if dense and plan.stages * y.numel() > dense_limit:
        raise ValueError(f"implicit='newton' forms a dense ({plan.stages}·{y.numel()})² Jacobian, "
                         f"above dense_limit={dense_limit}; use implicit='fixed_point' (non-stiff "
                         f"fields) or raise dense_limit")
    with torch.no_grad():
        yd, hd = y.detach(), hb.detach()
        k0 = f(t, yd) if k1 is None else k1.detach()
        ks = [k0] * plan.stages
        e_prev, n = None, y.numel()
        for it in range(max_iter):
            fk = _apply(f, plan, ts, yd, ks, hd)
            if dense:
                g = torch.cat([(k - v).reshape(n) for k, v in zip(ks, fk)])
                dk = torch.linalg.solve(_dense_matrix(f, plan, ts, yd, ks, hd), -g)
                dks = [dk[i * n:(i + 1) * n].reshape(y.shape) for i in range(plan.stages)]
            else:
                dks = [v - k for k, v in zip(ks, fk)]
            ks = [k + d for k, d in zip(ks, dks)]
            e = _scaled(dks, yd, hd, rtol, atol)
            if e == 0.0:
                break
            if e_prev is not None:
                theta = e / e_prev
                if theta >= 1.0 and it >= 2:
                    raise StageSolveError(f"implicit stage solve ({method}) diverges: update "
                                          f"{e:.3g} after {it + 1} iterations (contraction "
                                          f"{theta:.3g} ≥ 1); reduce the step size"
                                          + ("" if dense else " or use implicit='newton'"))
                if theta < 1.0 and e * theta / (1.0 - theta) <= KAPPA:
                    break
            e_prev = e
        else:
            raise StageSolveError(f"implicit stage solve ({method}) did not converge in "
                                  f"max_iter={max_iter} iterations (last scaled update {e:.3g}, "
                                  f"needed ≤ {KAPPA}); raise max_iter or reduce the step size")
    if not torch.is_grad_enabled():
        return ks
    return _attach_gradient(f, plan, ts, y, ks, hb, dense_limit)


def _attach_gradient(f: Func, plan: Plan, ts: list[Tensor], y: Tensor, ks: list[Tensor],
                     hb: Tensor, dense_limit: int) -> list[Tensor]:
    """K = F(K*) with autograd, and a hook applying (I − ∂F/∂K)^{−T} to incoming gradients."""
    s, n = plan.stages, y.numel()
    leaves = [k.detach().requires_grad_() for k in ks]
    with torch.enable_grad():
        out = _apply(f, plan, ts, y, leaves, hb)
        flat = torch.cat([o.reshape(n) for o in out])
    if not flat.requires_grad:
        return [o.detach() for o in out]
    if s * n <= dense_limit:
        mt = _dense_matrix(f, plan, ts, y.detach(), [k.detach() for k in ks], hb.detach()).T
        flat.register_hook(lambda g: None if g is None else torch.linalg.solve(mt, g))
    else:
        def hook(g: Tensor | None) -> Tensor | None:
            if g is None:
                return None
            lam = g
            for _ in range(200):
                vjp = torch.autograd.grad(flat, leaves, lam, retain_graph=True, allow_unused=True)
                new = g + torch.cat([(v if v is not None else torch.zeros_like(k)).reshape(n)
                                     for v, k in zip(vjp, leaves)])
                if torch.allclose(new, lam, rtol=1e-10, atol=1e-12):
                    return new
                lam = new
            raise StageSolveError("adjoint fixed-point iteration of the implicit stages did "
                                  "not converge in 200 iterations")
        flat.register_hook(hook)
    return [flat[i * n:(i + 1) * n].reshape(y.shape) for i in range(s)]
