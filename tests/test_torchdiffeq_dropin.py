"""``odeattn.torchdiffeq``: torchdiffeq's API and semantics (issue 11 §2), checked against closed forms
and, where it is correct, the installed torchdiffeq.

Reference problem: y' = −y + sin t, y(t₀) = y₀, so y(t) = (y₀ − s(t₀)) e^{−(t−t₀)} + s(t) with
s(t) = (sin t − cos t)/2.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

import odeattn.torchdiffeq as tdq
from odeattn.tableau import TABLEAUS
from odeattn.tableau._data_extra import DOP853_B3
from odeattn.tableau._exact import parse_entry
from odeattn.tableau._trees import order_residuals

ref = pytest.importorskip("torchdiffeq")
D = torch.float64

METHODS = [
    "dopri8",
    "dopri5",
    "bosh3",
    "fehlberg2",
    "adaptive_heun",
    "tsit5",
    "euler",
    "midpoint",
    "heun2",
    "heun3",
    "rk4",
    "explicit_adams",
    "implicit_adams",
    "fixed_adams",
    "implicit_euler",
    "implicit_midpoint",
    "trapezoid",
    "radauIIA3",
    "radauIIA5",
    "gl4",
    "gl6",
    "sdirk2",
    "trbdf2",
    "scipy_solver",
]
ADAPTIVE = ["dopri8", "dopri5", "bosh3", "fehlberg2", "adaptive_heun", "tsit5"]
ORDER = {
    "euler": 1,
    "implicit_euler": 1,
    "midpoint": 2,
    "heun2": 2,
    "implicit_midpoint": 2,
    "trapezoid": 2,
    "sdirk2": 2,
    "trbdf2": 2,
    "heun3": 3,
    "radauIIA3": 3,
    "rk4": 4,
    "gl4": 4,
    "explicit_adams": 4,
    "implicit_adams": 4,
    "fixed_adams": 4,
    "radauIIA5": 5,
    "gl6": 6,
}


def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -y + torch.sin(t)


def exact(y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    s = lambda v: (torch.sin(v) - torch.cos(v)) / 2  # noqa: E731
    return (y0 - s(t[0])) * torch.exp(-(t - t[0]))[:, None] + s(t)[:, None]


Y0 = torch.tensor([1.0, -2.0], dtype=D)
T = torch.linspace(0.5, 2.5, 5, dtype=D)


def test_every_torchdiffeq_method_name_is_there() -> None:
    assert sorted(tdq.SOLVERS) == sorted(METHODS)
    with pytest.raises(ValueError, match='Invalid method "dopri6"'):
        tdq.odeint(f, Y0, T, method="dopri6")


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_accurate(method: str, reverse: bool) -> None:
    t = T.flip(0) if reverse else T
    y0 = exact(Y0, T)[-1] if reverse else Y0
    opts = {"step_size": 0.01} if method in ORDER else None
    low = method in ("adaptive_heun", "fehlberg2")  # order 2: 1e-9 would take ~10⁵ steps
    rtol, atol = (1e-6, 1e-7) if low else (1e-9, 1e-10)
    ys = tdq.odeint(f, y0, t, method=method, rtol=rtol, atol=atol, options=opts)
    want = exact(y0, t)
    assert ys.dtype == D and ys.shape == want.shape
    tol = {1: 5e-3, 2: 5e-5}.get(ORDER.get(method, 2 if low else 9), 1e-6)
    tol *= 10 if reverse else 1  # backwards the solution grows like e^{t}
    torch.testing.assert_close(ys, want, rtol=0, atol=tol)


@pytest.mark.parametrize("method", ["euler", "midpoint", "heun3", "rk4", "dopri5"])
def test_values_match_installed_torchdiffeq(method: str) -> None:
    """Same grid semantics, same tableaux: one step per output interval (or step_size + linear
    interpolation) gives torchdiffeq's numbers; rk4 is the 3/8 rule here, as there."""
    opts = {"step_size": 0.3} if method != "dopri5" else None
    a = tdq.odeint(f, Y0, T, method=method, options=opts)
    b = ref.odeint(f, Y0, T, method=method, options=opts)
    tol = 1e-7 if method == "dopri5" else 1e-14
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


def test_rk4_is_the_three_eighths_rule() -> None:
    g = lambda t, y: torch.cos(t) * y  # noqa: E731
    y = tdq.odeint(g, torch.tensor(1.0, dtype=D), torch.tensor([0.0, 0.5], dtype=D), method="rk4")
    h, k = 0.5, []
    for c, row in ((0, []), (1 / 3, [1 / 3]), (2 / 3, [-1 / 3, 1]), (1, [1, -1, 1])):
        z = 1.0 + h * sum(a * kk for a, kk in zip(row, k))
        k.append(math.cos(c * h) * z)
    expected = 1.0 + h * (k[0] + 3 * k[1] + 3 * k[2] + k[3]) / 8
    assert y[-1].item() == pytest.approx(expected, rel=1e-15)


def test_default_fixed_grid_is_one_step_per_output_interval() -> None:
    ys = tdq.odeint(
        lambda t, y: y,
        torch.tensor(1.0, dtype=D),
        torch.tensor([0.0, 1.0, 3.0], dtype=D),
        method="euler",
    )
    assert ys.tolist() == [1.0, 2.0, 6.0]


def test_cubic_interp_and_grid_constructor() -> None:
    t = torch.tensor([0.0, 0.45, 1.0], dtype=D)
    for interp in ("linear", "cubic"):
        o = {"step_size": 0.2, "interp": interp}
        a = tdq.odeint(f, Y0, t, method="midpoint", options=o)
        torch.testing.assert_close(
            a, ref.odeint(f, Y0, t, method="midpoint", options=o), rtol=0, atol=1e-14
        )
    gc = lambda func, y0, tt: torch.linspace(0, 1, 11, dtype=D)  # noqa: E731
    x = tdq.odeint(
        lambda s, y: y,
        torch.tensor(1.0, dtype=D),
        t[[0, 2]],
        method="euler",
        options={"grid_constructor": gc},
    )
    assert x[-1].item() == pytest.approx(1.1**10, rel=1e-14)


def test_perturb_moves_evaluations_off_the_grid() -> None:
    seen: list[float] = []

    def g(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.append(t.item())
        return -y

    t = torch.tensor([0.0, 1.0])
    tdq.odeint(g, torch.ones(2), t, method="rk4", options={"step_size": 0.5, "perturb": True})
    assert 0.0 not in seen and 0.5 not in seen and 1.0 not in seen
    assert min(seen) > 0 and min(seen) < 1e-30
    seen.clear()
    tdq.odeint(g, torch.ones(2), t, method="rk4", options={"step_size": 0.5})
    assert {0.0, 0.5, 1.0} <= set(seen)


def test_tuple_state_and_tensor_tolerances() -> None:
    g = lambda t, y: (f(t, y[0]), 2 * y[1])  # noqa: E731
    a, b = tdq.odeint(g, (Y0, torch.ones(3, dtype=D)), T, rtol=(1e-9, 1e-9), atol=1e-10)
    torch.testing.assert_close(a, exact(Y0, T), rtol=0, atol=1e-7)
    torch.testing.assert_close(b[-1], torch.full((3,), math.exp(4.0), dtype=D), rtol=1e-7, atol=0)
    rt = torch.tensor([1e-9, 1e-3], dtype=D)
    y = tdq.odeint(f, Y0, T, rtol=rt, atol=1e-12)
    err = (y - exact(Y0, T)).abs().amax(0)
    assert err[0] < 1e-7 and err[0] < err[1]


def test_method_none_is_dopri5_and_unknown_options_warn() -> None:
    torch.testing.assert_close(
        tdq.odeint(f, Y0, T), tdq.odeint(f, Y0, T, method="dopri5"), rtol=0, atol=0
    )
    with pytest.warns(UserWarning, match="Unexpected arguments"):
        tdq.odeint(f, Y0, T, options={"step_sise": 0.1})
    with pytest.raises(AssertionError, match="max_num_steps"):
        tdq.odeint(f, Y0, T, options={"max_num_steps": 3})


class _Counted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2).double()
        self.calls = {"callback_step": 0, "callback_accept_step": 0, "callback_reject_step": 0}
        for k in list(self.calls):
            setattr(self, k, self._counter(k))

    def _counter(self, name: str):
        def cb(t0, y0, dt) -> None:
            self.calls[name] += 1

        return cb

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(y)) * torch.sin(20 * t)


def test_callbacks() -> None:
    m = _Counted()
    with pytest.warns(UserWarning, match="does not support callbacks"):  # accept/reject: adaptive
        tdq.odeint(
            m, Y0, torch.tensor([0.0, 1.0], dtype=D), method="euler", options={"step_size": 0.1}
        )
    assert m.calls["callback_step"] == 10
    m = _Counted()
    tdq.odeint(m, Y0, torch.tensor([0.0, 1.0], dtype=D), options={"first_step": 1.0})
    c = m.calls
    assert c["callback_step"] == c["callback_accept_step"] + c["callback_reject_step"]
    assert c["callback_reject_step"] >= 1
    with pytest.warns(UserWarning, match="does not support callbacks"):
        tdq.odeint(_Counted(), Y0, T, method="euler")


def test_jump_t_saves_evaluations() -> None:
    n = [0, 0]

    def jump(i: int):
        def g(t, x):
            n[i] += 1
            return -0.5 * x if t < 0.5 else x**2

        return g

    x0, t = torch.tensor([1.0, 2.0], dtype=D), torch.tensor([0.0, 1.0], dtype=D)
    a = tdq.odeint(jump(0), x0, t, rtol=1e-6, atol=1e-6)
    b = tdq.odeint(jump(1), x0, t, rtol=1e-6, atol=1e-6, options={"jump_t": torch.tensor([0.5])})
    assert n[1] < n[0] / 2
    xh = x0 * math.exp(-0.25)  # closed form: decay to t = 0.5, then x' = x²
    torch.testing.assert_close(b[-1], xh / (1 - 0.5 * xh), rtol=1e-5, atol=0)
    assert (a[-1] - b[-1]).abs().max() < 1e-2  # without jump_t: the same answer, less exactly


def test_event_time_and_its_gradient() -> None:
    """y' = −1 from y0: the event y = 1/2 is at t* = t0 + y0 − 1/2, so dt*/dy0 = 1."""
    y0 = torch.tensor([1.3], dtype=D, requires_grad=True)
    t0 = torch.tensor(0.2, dtype=D)
    ev = lambda t, y: y.sum() - 0.5  # noqa: E731
    t_ev, sol = tdq.odeint_event(lambda t, y: -torch.ones_like(y), y0, t0, event_fn=ev)
    assert t_ev.item() == pytest.approx(1.0, abs=1e-8)
    assert sol[-1].item() == pytest.approx(0.5, abs=1e-8)
    t_ev.backward()
    assert y0.grad.item() == pytest.approx(1.0, rel=1e-6)
    _, sol2 = tdq.odeint(
        f,
        Y0[:1],
        T[:2],
        event_fn=lambda t, y: y.sum() - 0.6,
        method="euler",
        options={"step_size": 0.01, "interp": "cubic"},
    )
    assert sol2.shape == (2, 1) and abs(sol2[-1].item() - 0.6) < 1e-6


def test_adjoint_matches_autograd_and_closed_form_time_grads() -> None:
    torch.manual_seed(0)
    m = _Counted()
    t = torch.tensor([0.0, 0.4, 1.0], dtype=D, requires_grad=True)
    ys = tdq.odeint(m, Y0, t, rtol=1e-10, atol=1e-12)
    g1 = torch.autograd.grad(ys.sum(), [*m.parameters(), t])
    for opts in (None, {"norm": "seminorm"}):
        ya = tdq.odeint_adjoint(m, Y0, t, rtol=1e-10, atol=1e-12, adjoint_options=opts)
        torch.testing.assert_close(ya, ys, rtol=0, atol=1e-12)
        g2 = torch.autograd.grad(ya.sum(), [*m.parameters(), t])
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)
    y0 = torch.tensor(1.0, dtype=D, requires_grad=True)
    tt = torch.tensor([0.0, 1.0], dtype=D, requires_grad=True)
    y = tdq.odeint_adjoint(lambda s, y: -y, y0, tt, adjoint_params=())
    y[-1].backward()
    e = math.exp(-1)
    torch.testing.assert_close(tt.grad, torch.tensor([e, -e], dtype=D), rtol=1e-6, atol=0)
    assert y0.grad.item() == pytest.approx(e, rel=1e-6)
    with pytest.raises(ValueError, match="adjoint_params"):
        tdq.odeint_adjoint(lambda s, y: -y, y0, tt)


def test_dtype_follows_y0_and_scipy_and_dense() -> None:
    y32 = tdq.odeint(f, Y0.float(), T.float(), method="implicit_euler", options={"step_size": 0.1})
    assert y32.dtype == torch.float32
    ys = tdq.odeint(
        f, Y0, T, method="scipy_solver", rtol=1e-10, atol=1e-10, options={"solver": "DOP853"}
    )
    torch.testing.assert_close(ys, exact(Y0, T), rtol=0, atol=1e-8)
    dense = tdq.odeint_dense(f, Y0, T[0], T[-1], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dense(T[2]), exact(Y0, T)[2], rtol=0, atol=1e-8)


def test_dopri8_third_order_weights_and_gl4_nodes() -> None:
    """Hairer's b̂₃ satisfies the order-3 conditions (not 4); gl4's nodes are distinct."""
    tab = TABLEAUS["dopri8"]
    b3 = tuple(parse_entry(x)[0] for x in DOP853_B3)
    res = {p: [] for p in range(1, 5)}
    for tree, r in order_residuals(tab.a, b3, 4):
        res[tree.order].append(abs(float(r)))
    assert max(max(res[p]) for p in (1, 2, 3)) < 1e-25 and max(res[4]) > 1e-3
    c = TABLEAUS["gauss_legendre4"].c
    assert (
        abs(float(c[0]) - (0.5 - math.sqrt(3) / 6)) < 1e-15
        and abs(float(c[1]) - (0.5 + math.sqrt(3) / 6)) < 1e-15
    )


def test_warnings_are_quiet_for_valid_calls() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tdq.odeint(f, Y0, T, method="rk4", options={"step_size": 0.1})
        tdq.odeint(f, Y0, T, options={"first_step": 0.1, "step_t": torch.tensor([1.0])})


def test_complex_state() -> None:
    y0 = torch.tensor([1 + 1j, 2 - 0.5j], dtype=torch.complex128)
    t = torch.linspace(0, 1, 4, dtype=D)
    ys = tdq.odeint(lambda s, y: 1j * y, y0, t, rtol=1e-10, atol=1e-12)
    assert ys.dtype == torch.complex128
    torch.testing.assert_close(ys, y0 * torch.exp(1j * t)[:, None], rtol=0, atol=1e-8)


@pytest.mark.parametrize("method", ["implicit_euler", "implicit_midpoint"])
@pytest.mark.parametrize("lam", [-1.0, -1000.0], ids=["nonstiff", "stiff"])
def test_one_stage_implicit_methods_exact_on_linear_problems(method: str, lam: float) -> None:
    # One implicit stage is tried Jacobian-free (fixed point) first and solved by Newton when that
    # fails (stiff: h·|λ| = 100). Either way the step is the method's exact linear recurrence.
    import odeattn.torchdiffeq as tdq

    h, y0 = 0.1, torch.tensor([1.0, -2.0], dtype=torch.float64)
    t = torch.tensor([0.0, h, 2 * h], dtype=torch.float64)
    out = tdq.odeint(lambda s, y: lam * y, y0, t, method=method, rtol=1e-12, atol=1e-12)
    z = h * lam
    r = 1 / (1 - z) if method == "implicit_euler" else (1 + z / 2) / (1 - z / 2)
    want = torch.stack([y0, r * y0, r * r * y0])
    torch.testing.assert_close(out, want, rtol=1e-9, atol=1e-12)
