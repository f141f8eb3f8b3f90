"""Implicit stage equations: Newton or fixed-point iteration with rtol/atol-tied stopping.

For an implicit tableau the stage derivatives K = (k_1, …, k_s) solve K = F(K) with

    F(K)_i = f(t + c_i h, y + h Σ_j a_ij k_j).

``"newton"``: Newton's method on G(K) = K − F(K), M ΔK = −G with M = I − ∂F/∂K,
M_ij = δ_ij I − a_ij diag(h) J_i and J_i = ∂f/∂y(t_i, Z_i) re-evaluated every iteration. For
small states (s·N ≤ ``dense_limit``, N = y.numel()) M is formed densely from the exact stage
Jacobians (``torch.autograd.functional.jacobian``) and solved directly: quadratic convergence,
robust for stiff problems. Beyond that (e.g. conv feature maps) the same Newton iteration is
matrix-free (Jacobian-free Newton–Krylov, Knoll & Keyes 2004): GMRES on M with
finite-difference products M v ≈ v − (F(K + εv) − F(K))/ε (s f-evals per Krylov vector).
``"fixed_point"``: K ← F(K), one f-eval per stage per iteration, no Jacobian; converges iff
h·Lip(f)·ρ(|A|) < 1, i.e. for non-stiff blocks, where it is the cheapest choice.

Stopping (Hairer–Wanner II, §IV.8): with e_n = max_i RMS(h Δk_i / (atol + rtol·|y|)) and the
observed contraction θ = e_n / e_{n−1}, stop when e_n·θ/(1 − θ) ≤ κ = 0.03, i.e. the remaining
stage error is a small fraction of the step tolerance; there is no fixed accuracy floor (only
the dtype's: rtol is raised to at least 50·eps, 1.1e-14 in float64, 6e-6 in float32). A
diverging or non-converged solve raises :class:`StageSolveError` (never a silent result).

Gradients use the implicit function theorem: the converged K* is re-evaluated once with
autograd, K = F(K*), and a hook maps the incoming gradient g to λ = (I − ∂F/∂K)^{−T} g
(dense solve when s·N ≤ dense_limit, else GMRES with vector–Jacobian products). When nothing
needs a gradient (``torch.is_grad_enabled()`` is False, or K = F(K*) evaluated with a constant
K* does not require grad: neither y, h, t nor a parameter of f does) the converged K* is
returned as is — no Jacobian, no hook, and the result does not require grad.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from odeattn.compile._plan import Plan, node, shift

__all__ = ["KAPPA", "StageSolveError", "solve_stages"]

KAPPA = 0.03
Func = Callable[[Tensor, Tensor], Tensor]


class StageSolveError(RuntimeError):
    """The implicit stage equations did not converge to the requested tolerance."""


def _stage_inputs(plan: Plan, y: Tensor, ks: list[Tensor], hb: Tensor) -> list[Tensor]:
    return [shift(y, plan.rows[i], ks, hb) for i in range(plan.stages)]


def _apply(
    f: Func, plan: Plan, ts: list[Tensor], y: Tensor, ks: list[Tensor], hb: Tensor
) -> list[Tensor]:
    return [f(ts[i], z) for i, z in enumerate(_stage_inputs(plan, y, ks, hb))]


def _jacobian(fn: Callable[[Tensor], Tensor], v: Tensor) -> Tensor:
    """Exact Jacobian of ``fn`` at ``v``: vmapped reverse mode, plain loop if vmap fails."""
    with torch.enable_grad():
        try:
            return torch.autograd.functional.jacobian(fn, v, vectorize=True)
        except RuntimeError:
            return torch.autograd.functional.jacobian(fn, v)


def _dense_matrix(
    f: Func, plan: Plan, ts: list[Tensor], y: Tensor, ks: list[Tensor], hb: Tensor
) -> Tensor:
    """M = I − ∂F/∂K as an (sN)×(sN) matrix, M_ij = δ_ij I − a_ij diag(h) J_i."""
    s, n = plan.stages, y.numel()
    hvec = hb.expand_as(y).reshape(n)
    m = torch.eye(s * n, dtype=y.dtype, device=y.device)
    for i, z in enumerate(_stage_inputs(plan, y, ks, hb)):
        jac = _jacobian(
            lambda v, t=ts[i]: f(t, v.reshape(y.shape)).reshape(n), z.detach().reshape(n)
        )
        for j, a in plan.rows[i]:
            m[i * n : (i + 1) * n, j * n : (j + 1) * n] -= a * hvec[:, None] * jac
    return m


def _gmres(
    matvec: Callable[[Tensor], Tensor], b: Tensor, *, rtol: float, maxiter: int
) -> tuple[Tensor, float]:
    """GMRES from x0 = 0 for A x = b (flat tensors); returns x and the relative residual."""
    beta = float(b.norm())
    if beta == 0.0:
        return torch.zeros_like(b), 0.0
    vs, hess = [b / beta], torch.zeros(maxiter + 1, maxiter, dtype=torch.float64)
    coef, rel = torch.zeros(1, dtype=torch.float64), 1.0
    for j in range(maxiter):
        w = matvec(vs[j])
        for i in range(j + 1):  # modified Gram–Schmidt
            hess[i, j] = float(torch.dot(w.reshape(-1), vs[i].reshape(-1)))
            w = w - hess[i, j].item() * vs[i]
        hess[j + 1, j] = float(w.norm())
        rhs = torch.zeros(j + 2, 1, dtype=torch.float64)
        rhs[0, 0] = beta
        coef = torch.linalg.lstsq(hess[: j + 2, : j + 1], rhs).solution
        rel = float((hess[: j + 2, : j + 1] @ coef - rhs).norm()) / beta
        if rel <= rtol or hess[j + 1, j] <= 1e-14 * beta:
            break
        vs.append(w / hess[j + 1, j].item())
    x = torch.zeros_like(b)
    for i in range(coef.shape[0]):
        x = x + coef[i, 0].item() * vs[i]
    return x, rel


def _fd_matvec(
    f: Func, plan: Plan, ts: list[Tensor], y: Tensor, ks: list[Tensor], fk: list[Tensor], hb: Tensor
) -> Callable[[Tensor], Tensor]:
    """v ↦ M v ≈ v − (F(K + εv) − F(K)) / ε (forward difference, ε ~ √eps relative)."""
    n = y.numel()
    base = torch.cat([v.reshape(n) for v in fk])
    knorm = float(torch.cat([k.reshape(n) for k in ks]).norm())

    def mv(v: Tensor) -> Tensor:
        eps = torch.finfo(y.dtype).eps ** 0.5 * (1.0 + knorm) / max(float(v.norm()), 1e-300)
        shifted = [k + eps * v[i * n : (i + 1) * n].reshape(y.shape) for i, k in enumerate(ks)]
        out = torch.cat([o.reshape(n) for o in _apply(f, plan, ts, y, shifted, hb)])
        return v - (out - base) / eps

    return mv


def _scaled(dks: list[Tensor], y: Tensor, hb: Tensor, rtol: float, atol: float) -> float:
    rtol = max(rtol, 50 * torch.finfo(y.dtype).eps)  # below this the update is rounding noise
    scale = atol + rtol * y.abs()
    return max(float(((hb * d) / scale).pow(2).mean().sqrt()) for d in dks)


def _update(
    f: Func, plan: Plan, ts: list[Tensor], y: Tensor, ks: list[Tensor], hb: Tensor, how: str
) -> list[Tensor]:
    """One iteration's stage updates ΔK: fixed point F(K) − K, or a dense / Krylov Newton step."""
    fk = _apply(f, plan, ts, y, ks, hb)
    if how == "fixed_point":
        return [v - k for k, v in zip(ks, fk)]
    n = y.numel()
    g = torch.cat([(k - v).reshape(n) for k, v in zip(ks, fk)])
    if how == "dense":
        dk = torch.linalg.solve(_dense_matrix(f, plan, ts, y, ks, hb), -g)
    else:
        dk = _gmres(_fd_matvec(f, plan, ts, y, ks, fk, hb), -g, rtol=1e-3, maxiter=30)[0]
    return [dk[i * n : (i + 1) * n].reshape(y.shape) for i in range(plan.stages)]


def _converged(e: float, e_prev: float | None, it: int, method: str) -> bool:
    """Stop when the estimated remaining error e·θ/(1 − θ) ≤ KAPPA; raise when θ ≥ 1 persists."""
    if e == 0.0:
        return True
    if e_prev is None:
        return False
    theta = e / e_prev
    if theta >= 1.0 and it >= 2:
        raise StageSolveError(
            f"implicit stage solve ({method}) diverges: update "
            f"{e:.3g} after {it + 1} iterations (contraction "
            f"{theta:.3g} ≥ 1); reduce the step size"
            + (" or use implicit='newton'" if method == "fixed_point" else "")
        )
    return theta < 1.0 and e * theta / (1.0 - theta) <= KAPPA


def solve_stages(
    f: Func,
    t: Tensor,
    y: Tensor,
    h: Tensor,
    hb: Tensor,
    plan: Plan,
    *,
    rtol: float,
    atol: float,
    method: str,
    max_iter: int,
    dense_limit: int,
    k1: Tensor | None = None,
) -> list[Tensor]:
    """Stage derivatives k_1..k_s of one implicit step (see the module docstring)."""
    ts = [node(t, c, h) for c in plan.c]
    how = method
    if method == "newton":
        how = "dense" if plan.stages * y.numel() <= dense_limit else "krylov"
    with torch.no_grad():
        yd, hd = y.detach(), hb.detach()
        ks = [f(t, yd) if k1 is None else k1.detach()] * plan.stages
        e, e_prev = float("nan"), None
        for it in range(max_iter):
            dks = _update(f, plan, ts, yd, ks, hd, how)
            ks = [k + d for k, d in zip(ks, dks)]
            e = _scaled(dks, yd, hd, rtol, atol)
            if _converged(e, e_prev, it, method):
                break
            e_prev = e
        else:
            raise StageSolveError(
                f"implicit stage solve ({method}) did not converge in "
                f"max_iter={max_iter} iterations (last scaled update {e:.3g}, "
                f"needed ≤ {KAPPA}); raise max_iter or reduce the step size"
            )
    if not torch.is_grad_enabled():
        return ks  # the no-grad path: no gradient machinery at all
    return _attach_gradient(f, plan, ts, y, ks, hb, dense_limit)


def _attach_gradient(
    f: Func, plan: Plan, ts: list[Tensor], y: Tensor, ks: list[Tensor], hb: Tensor, dense_limit: int
) -> list[Tensor]:
    """K = F(K*) with autograd, and a hook applying (I − ∂F/∂K)^{−T} to incoming gradients."""
    s, n = plan.stages, y.numel()
    dense = s * n <= dense_limit
    direct = y.requires_grad or hb.requires_grad or any(t.requires_grad for t in ts)
    if direct and not dense:
        leaves = [k.detach().requires_grad_() for k in ks]
    else:  # probe: F(K*) with constant K* — its graph reaches y, h, t and f's parameters only
        leaves = [k.detach() for k in ks]
    with torch.enable_grad():
        out = _apply(f, plan, ts, y, leaves, hb)
        flat = torch.cat([o.reshape(n) for o in out])
    if not flat.requires_grad:  # nothing upstream needs gradients: no Jacobian, no hook
        return ks
    if not dense and not leaves[0].requires_grad:  # GMRES adjoint needs VJPs w.r.t. K
        leaves = [k.detach().requires_grad_() for k in ks]
        with torch.enable_grad():
            flat = torch.cat([o.reshape(n) for o in _apply(f, plan, ts, y, leaves, hb)])
    if dense:
        mt = _dense_matrix(f, plan, ts, y.detach(), [k.detach() for k in ks], hb.detach()).T
        flat.register_hook(lambda g: None if g is None else torch.linalg.solve(mt, g))
    else:
        flat.register_hook(_krylov_adjoint(flat, leaves, s * n))
    return [flat[i * n : (i + 1) * n].reshape(y.shape) for i in range(s)]


def _krylov_adjoint(
    flat: Tensor, leaves: list[Tensor], size: int
) -> Callable[[Tensor | None], Tensor | None]:
    """Gradient hook g ↦ λ solving (I − ∂F/∂K)ᵀ λ = g by GMRES on vector-Jacobian products."""
    n = leaves[0].numel()

    def vjp_matvec(v: Tensor) -> Tensor:
        vj = torch.autograd.grad(flat, leaves, v, retain_graph=True, allow_unused=True)
        return v - torch.cat(
            [(u if u is not None else torch.zeros_like(k)).reshape(n) for u, k in zip(vj, leaves)]
        )

    busy = [False]  # the VJPs below run backward through `flat` again: no re-entry

    def hook(g: Tensor | None) -> Tensor | None:
        if g is None or busy[0]:
            return None
        busy[0] = True
        tol = max(1e-10, 50 * torch.finfo(g.dtype).eps)
        try:
            with torch.no_grad():
                lam, rel = _gmres(vjp_matvec, g, rtol=tol, maxiter=min(size, 100))
        finally:
            busy[0] = False
        if rel > 1e3 * tol:
            raise StageSolveError(
                f"adjoint solve of the implicit stages stalled at relative residual {rel:.3g}"
            )
        return lam

    return hook
