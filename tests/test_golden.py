"""Golden one-step values: every tableau's step computed to 40 digits with mpmath.

ODE (scalar, non-autonomous, nonlinear): ``y' = sin(t) − y² + t·y``, one step from t0 = 1/4,
y0 = 7/10 (the float64 value) with h = 1/2 (t0, h, t0 + h exact in binary). The tableau's exact
entries (Fractions, quadratic surds a + b√d) are evaluated in mpmath; implicit stage equations
K_i = f(t0 + c_i h, y0 + h Σ_j a_ij K_j) are solved with ``mpmath.findroot`` (Newton) to 40
digits. odeint (one fixed step) must agree to 1e-14 relative for explicit methods, and to the
requested tolerance for implicit ones (whose stage solve stops at a tolerance tied to rtol/atol).
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
import torch

from odeattn.solve import odeint
from odeattn.tableau import TABLEAUS
from odeattn.tableau._exact import Surd

mpmath.mp.dps = 40
T0, H, Y0 = 0.25, 0.5, 0.7


def mp(x) -> mpmath.mpf:
    if isinstance(x, Surd):
        return mp(x.a) + mp(x.b) * mpmath.sqrt(x.d)
    if isinstance(x, Fraction):
        return mpmath.mpf(x.numerator) / x.denominator
    return mpmath.mpf(x)  # int or float64 (exact binary value)


def f_mp(t, y):
    return mpmath.sin(t) - y * y + t * y


def f_torch(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.sin(t) - y * y + t * y


def golden_step(name: str) -> mpmath.mpf:
    tab = TABLEAUS[name]
    s = tab.stages
    a = [[mp(v) for v in row] for row in tab.a]
    b = [mp(v) for v in tab.b]
    c = [mp(v) for v in tab.c]
    t0, h, y0 = mpmath.mpf(T0), mpmath.mpf(H), mpmath.mpf(Y0)

    def stage(i, ks):
        return f_mp(t0 + c[i] * h, y0 + h * mpmath.fsum(a[i][j] * ks[j] for j in range(s)))

    if tab.is_explicit:
        ks = [mpmath.mpf(0)] * s
        for i in range(s):
            ks[i] = stage(i, ks)
    else:
        k0 = f_mp(t0, y0)
        sol = mpmath.findroot(
            lambda *k: [k[i] - stage(i, list(k)) for i in range(s)],
            [k0] * s,
            tol=mpmath.mpf(10) ** -35,
        )
        ks = [sol[i] for i in range(s)] if isinstance(sol, mpmath.matrix) else [sol]
    return y0 + h * mpmath.fsum(b[i] * ks[i] for i in range(s))


def one_step(name: str, rtol: float = 1e-7, atol: float = 1e-9, **opts) -> float:
    y0 = torch.tensor([Y0], dtype=torch.float64)
    with torch.no_grad():
        ys = odeint(
            f_torch,
            y0,
            [T0, T0 + H],
            method=name,
            rtol=rtol,
            atol=atol,
            options={"step_size": H, **opts},
        )
    return float(ys[-1, 0])


@pytest.mark.parametrize("name", sorted(n for n, t in TABLEAUS.items() if t.is_explicit))
def test_explicit_golden(name: str) -> None:
    gold = golden_step(name)
    got = one_step(name)
    rel = abs((mpmath.mpf(got) - gold) / gold)
    assert rel <= 1e-14, (
        f"{name}: got {got!r}, golden {mpmath.nstr(gold, 20)}, rel {float(rel):.2e}"
    )


@pytest.mark.parametrize("name", sorted(n for n, t in TABLEAUS.items() if not t.is_explicit))
def test_implicit_golden(name: str) -> None:
    gold = golden_step(name)
    for tol in (1e-6, 1e-10, 1e-13):
        got = one_step(name, rtol=tol, atol=tol, implicit="newton")
        err = abs(mpmath.mpf(got) - gold)
        assert err <= tol * (1 + abs(gold)), f"{name} tol={tol}: error {float(err):.2e}"


def test_implicit_tolerance_is_tied_to_rtol_atol() -> None:
    """Fixed-point stage iteration: a loose tolerance stops early (a visibly larger error), a
    tight one reaches ~1e-15: there is no fixed accuracy floor and no fixed work either."""
    gold = golden_step("gauss_legendre6")
    errs = {
        tol: float(
            abs(
                mpmath.mpf(one_step("gauss_legendre6", rtol=tol, atol=tol, implicit="fixed_point"))
                - gold
            )
        )
        for tol in (1e-4, 1e-13)
    }
    assert errs[1e-13] <= 1e-13
    assert errs[1e-4] <= 1e-4
    assert errs[1e-4] > 100 * max(errs[1e-13], 1e-16)


def test_golden_sees_the_nodes() -> None:
    """The golden value distinguishes a correct method from one with a wrong node: the classic
    RK4 weights with rk38's nodes differ from both golden values by far more than 1e-14."""
    g4, g38 = golden_step("rk4"), golden_step("rk38")
    assert abs(g4 - g38) > 1e-6
