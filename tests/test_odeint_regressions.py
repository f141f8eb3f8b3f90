"""Regression tests for the three wrong answers of issue 11 §1, each against an independent reference.

1. Time gradients. Riccati problem y' = cos(t)·y² (non-autonomous, nonlinear), closed form
   y(t) = 1 / (1/y₀ + sin t₀ − sin t). For L = Σᵢ wᵢ y(tᵢ):
   ∂L/∂tᵢ = wᵢ f(tᵢ, yᵢ) = wᵢ cos(tᵢ) yᵢ² (i ≥ 1) and, since Φ(tᵢ, t₀) = yᵢ²/y₀²,
   ∂L/∂t₀ = −Σᵢ wᵢ Φ(tᵢ, t₀) f(t₀, y₀) = −cos(t₀) Σᵢ wᵢ yᵢ².
2. Output dtype = y0 dtype (0-d float32 state, explicit, adaptive and implicit methods).
3. Adjoint with f = −0.1·exp(−0.1 t) (no y, no parameters): y(t₁) = y₀ + e^{−0.1 t₁} − e^{−0.1 t₀},
   so ∂y(t₁)/∂y₀ = 1, ∂y(t₁)/∂t₁ = f(t₁), ∂y(t₁)/∂t₀ = −f(t₀).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from odeattn.solve import odeint

D = torch.float64


class Riccati(nn.Module):
    """y' = cos(t) y² (an nn.Module so the adjoint accepts it; no parameters)."""

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cos(t) * y * y


def _exact(y0: torch.Tensor, t: list[float]) -> torch.Tensor:
    return torch.stack([1 / (1 / y0 + math.sin(t[0]) - math.sin(s)) for s in t])


def _expected_grads(y0: torch.Tensor, t: list[float], w: torch.Tensor) -> torch.Tensor:
    """dL/dt for L = Σ_i Σ_batch w_i y_i (y0 a (B,) vector)."""
    ys = _exact(y0, t)  # (N, B)
    g = [-(math.cos(t[0]) * (w[1:, None] * ys[1:] ** 2)).sum()]
    g += [(w[i] * math.cos(t[i]) * ys[i] ** 2).sum() for i in range(1, len(t))]
    return torch.stack(g)


CASES = {
    "adaptive_dopri5": dict(method="dopri5"),
    "adaptive_tsit5_clip": dict(method="tsit5"),
    "adaptive_bosh3": dict(method="bosh3"),
    "fixed_rk4": dict(method="rk4", options={"step_size": 1e-3}),
    "per_sample": dict(method="dopri5", options={"per_sample": True}),
    "adjoint": dict(method="dopri5", options={"adjoint": True}),
    "adjoint_fixed": dict(method="rk4", options={"adjoint": True, "step_size": 1e-3}),
}


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("case", list(CASES))
def test_time_gradients_match_flow_identities(case: str, reverse: bool) -> None:
    times = [0.3, 0.9, 1.4, 2.0]
    if reverse:
        times = times[::-1]
    t = torch.tensor(times, dtype=D, requires_grad=True)
    y0 = torch.tensor([0.5, -0.4], dtype=D)
    w = torch.tensor([0.7, 1.0, -2.0, 1.5], dtype=D)
    kw = CASES[case]
    ys = odeint(Riccati(), y0, t, rtol=1e-10, atol=1e-12, **kw)
    torch.testing.assert_close(ys, _exact(y0, times), rtol=1e-7, atol=1e-9)
    (w[:, None] * ys).sum().backward()
    torch.testing.assert_close(t.grad, _expected_grads(y0, times, w), rtol=1e-6, atol=1e-8)


def test_time_gradient_of_t0_is_not_zero() -> None:
    """The issue's example: y' = −y, y(0) = 1: d y(1)/d t = [+e⁻¹, −e⁻¹]."""
    t = torch.tensor([0.0, 1.0], dtype=D, requires_grad=True)
    odeint(lambda s, y: -y, torch.tensor(1.0, dtype=D), t)[-1].backward()
    e = math.exp(-1)
    torch.testing.assert_close(t.grad, torch.tensor([e, -e], dtype=D), rtol=1e-6, atol=0)


def test_time_gradients_with_y0_gradient() -> None:
    """t and y0 gradients together: dy(t1)/dy0 = Φ = y1²/y0²."""
    times = [0.2, 1.1]
    t = torch.tensor(times, dtype=D, requires_grad=True)
    y0 = torch.tensor(0.5, dtype=D, requires_grad=True)
    odeint(Riccati(), y0, t, rtol=1e-10, atol=1e-12)[-1].backward()
    y1 = _exact(y0.detach(), times)[-1]
    torch.testing.assert_close(y0.grad, y1**2 / 0.25, rtol=1e-7, atol=0)
    torch.testing.assert_close(
        t.grad, torch.stack([-math.cos(0.2) * y1**2, math.cos(1.1) * y1**2]), rtol=1e-6, atol=0
    )


DTYPE_CASES = {
    "dopri5": dict(method="dopri5"),
    "bosh3": dict(method="bosh3"),
    "rk4_fixed": dict(method="rk4", options={"step_size": 0.1}),
    "radau_iia5": dict(method="radau_iia5", options={"step_size": 0.1}),
    "backward_euler": dict(method="backward_euler", options={"step_size": 0.01}),
    "trapezoid": dict(method="trapezoid", options={"step_size": 0.1}),
    "per_sample": dict(method="dopri5", options={"per_sample": True}),
}


@pytest.mark.parametrize(
    ("case", "shape"),
    [
        (c, s) for c in DTYPE_CASES for s in ((), (3,)) if s or c != "per_sample"
    ],  # per_sample: dim 0
    ids=lambda v: v if isinstance(v, str) else f"{len(v)}d",
)
def test_output_dtype_is_y0_dtype(case: str, shape: tuple[int, ...]) -> None:
    seen: set[torch.dtype] = set()

    def f(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.update((s.dtype, y.dtype))
        return -y

    y0 = torch.ones(shape, dtype=torch.float32)
    ys = odeint(f, y0, torch.tensor([0.0, 1.0]), rtol=1e-5, atol=1e-7, **DTYPE_CASES[case])
    assert ys.dtype == torch.float32 and seen == {torch.float32}
    exact = {"backward_euler": 1.01**-100, "trapezoid": (0.95 / 1.05) ** 10}.get(case, math.exp(-1))
    torch.testing.assert_close(ys[-1], torch.full(shape, exact), rtol=1e-4, atol=0)


class ExpODE(nn.Module):
    """f = −0.1·exp(−0.1 t): depends on neither y nor any parameter."""

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -0.1 * torch.exp(-0.1 * t) * torch.ones_like(y)


@pytest.mark.parametrize("method,extra", [("dopri5", {}), ("rk4", {"step_size": 0.01})])
def test_adjoint_with_f_independent_of_y_and_parameters(method: str, extra: dict) -> None:
    y0 = torch.tensor([1.0], dtype=D, requires_grad=True)
    t = torch.tensor([1.0, 8.0], dtype=D, requires_grad=True)
    ys = odeint(ExpODE(), y0, t, method=method, options={"adjoint": True, **extra})
    expected = 1.0 + math.exp(-0.8) - math.exp(-0.1)
    torch.testing.assert_close(ys[-1], torch.tensor([expected], dtype=D), rtol=1e-7, atol=0)
    ys[-1].sum().backward()
    torch.testing.assert_close(y0.grad, torch.ones(1, dtype=D), rtol=1e-12, atol=0)
    f = [-0.1 * math.exp(-0.1 * s) for s in (1.0, 8.0)]
    torch.testing.assert_close(t.grad, torch.tensor([-f[0], f[1]], dtype=D), rtol=1e-7, atol=0)


def test_adjoint_sum_over_outputs_matches_torchdiffeq_convention() -> None:
    """Σ over 10 outputs gives y0.grad = 10 (each dy_i/dy0 = 1), torchdiffeq's ExpODE answer."""
    y0 = torch.tensor(1.0, dtype=D, requires_grad=True)
    t = torch.linspace(1, 8, 10, dtype=D)
    odeint(ExpODE(), y0, t, options={"adjoint": True}).sum().backward()
    assert y0.grad.item() == pytest.approx(10.0, rel=1e-12)
