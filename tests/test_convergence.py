"""Observed order of convergence of every method in TABLEAUS, float64, fixed grid.

Two non-autonomous nonlinear problems with closed-form solutions, solved as one 2-vector on
t ∈ [0, 4] (outputs at t = 0, 1, 2, 3, 4; the error is the max over the outputs):

    P1  y' = cos(t) · y (1 − y),  y(0) = 0.1   →  y = 1 / (1 + 9 e^{−sin t})
    P2  y' = −2 t y²,             y(0) = 1     →  y = 1 / (1 + t²)

Both see the nodes c (a method evaluating f at the wrong time is order ≤ 1 here, as torchdiffeq's
gl4 and torchdyn's rk4 are), and neither is a pure quadrature (where e.g. Kutta's rk3 reduces to
Simpson's rule and shows order 4). The slope is the least-squares fit of log(err) against
log(h) over three step counts n, 2n, 4n; the windows were chosen where the error is asymptotic
(the local slopes have settled) and above round-off (≥ ~1e-13): order-5 pairs have very small
error constants on P2, so their window starts later. Required: |slope − order| ≤ 0.3.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from odeattn.solve import odeint
from odeattn.tableau import TABLEAUS

T = 4.0
TIMES = [0.0, 1.0, 2.0, 3.0, 4.0]
Y0 = (0.1, 1.0)


def exact(t: float) -> np.ndarray:
    return np.array([1 / (1 + 9 * math.exp(-math.sin(t))), 1 / (1 + t * t)])


def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.cos(t) * y[0] * (1 - y[0]), -2 * t * y[1] ** 2])


def first_n(order: int, explicit: bool) -> tuple[int, int]:
    """First step count of the window (n, 2n, 4n) for P1 and P2."""
    if not explicit:  # implicit: clean from coarse grids on; keep the default run short
        return (16, 16) if order >= 5 else (32, 32)
    return (32, 128) if order >= 5 else (64, 64)


# tsit5's error on P1 is still pre-asymptotic at n = 32..128 (local slopes 5.5, 5.3)
# dopri8 (order 8): errors 2e-10 .. 3e-15 over these windows (round-off below)
OVERRIDES = {"tsit5": (64, 128), "dopri8": (8, 16)}


def errors(name: str, ns: list[int]) -> np.ndarray:
    """Max error over the outputs, per problem, for each step count: (len(ns), 2)."""
    ex = np.stack([exact(t) for t in TIMES])
    y0 = torch.tensor(Y0, dtype=torch.float64)
    out = []
    for n in ns:
        kw = {} if TABLEAUS[name].is_explicit else {"implicit": "newton"}
        with torch.no_grad():
            ys = odeint(
                field,
                y0,
                TIMES,
                method=name,
                rtol=1e-13,
                atol=1e-13,
                options={"step_size": T / n, **kw},
            )
        out.append(np.abs(ys.numpy() - ex).max(axis=0))
    return np.array(out)


def slope(ns: list[int], err: np.ndarray) -> float:
    return float(-np.polyfit(np.log(ns), np.log(err), 1)[0])


@pytest.mark.parametrize("name", sorted(TABLEAUS))
def test_convergence_order(name: str) -> None:
    tab = TABLEAUS[name]
    n1, n2 = OVERRIDES.get(name) or first_n(tab.order, tab.is_explicit)
    ns = sorted({n1, 2 * n1, 4 * n1, n2, 2 * n2, 4 * n2})
    err = errors(name, ns)
    for p, n0 in enumerate((n1, n2)):
        idx = [ns.index(n0 * m) for m in (1, 2, 4)]
        e = err[idx, p]
        assert e.min() > 2e-15, f"{name} P{p + 1}: error {e} reached round-off; window too fine"
        s = slope([ns[i] for i in idx], e)
        assert abs(s - tab.order) <= 0.3, (
            f"{name} P{p + 1}: observed order {s:.2f}, declared {tab.order}; errors {e}"
        )


def test_wrong_node_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test can fail: GL4 run with torchdiffeq's wrong node (c₂ = ½ − √3/6, the tableau's A
    and b unchanged) converges with order ≈ 1 on these problems."""
    import dataclasses

    import odeattn.compile as comp
    import odeattn.solve._odeint as solver

    class WrongNode(comp.Stepper):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.plan = dataclasses.replace(self.plan, c=(self.plan.c[0], self.plan.c[0]))

    monkeypatch.setattr(solver, "Stepper", WrongNode)
    ns = [32, 64, 128]
    err = errors("gauss_legendre4", ns)
    assert abs(slope(ns, err[:, 0]) - 1.0) < 0.3
