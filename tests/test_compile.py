"""The compiler: compiled steps against hand-written math, implicit stages, RKCNN blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from odeattn.compile import StageSolveError, Stepper, compile_step
from odeattn.graph import MethodGraph
from odeattn.tableau import TABLEAUS

D = torch.float64
EXPLICIT = sorted(n for n, t in TABLEAUS.items() if t.is_explicit)
IMPLICIT = sorted(n for n, t in TABLEAUS.items() if not t.is_explicit)


def _field(seed=0, n=4):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n, n), nn.Tanh(), nn.Linear(n, n)).double()


def _reference_step(tab, f, t, y, h):
    """Naive dense RK step: every a_ij term, no skipping, no fusion."""
    ks = []
    for i in range(tab.stages):
        z = y + h * sum(tab.a_f[i][j] * ks[j] for j in range(i)) if i else y
        ks.append(f(t + tab.c_f[i] * h, z))
    y1 = y + h * sum(b * k for b, k in zip(tab.b_f, ks))
    err = None if tab.b_err is None else h * sum(e * k for e, k in zip(tab.b_err_f, ks))
    return y1, err, ks


def _central_difference(loss, w: torch.Tensor, idx: tuple[int, int], eps: float = 1e-6) -> float:
    """(loss(w + eps e_idx) − loss(w − eps e_idx)) / 2eps, restoring w afterwards."""
    with torch.no_grad():
        w[idx] += eps
        up = loss()
        w[idx] -= 2 * eps
        down = loss()
        w[idx] += eps
    return float(up - down) / (2 * eps)


def test_euler_block_is_exactly_a_residual_block():
    f = _field()
    x = torch.randn(3, 4, dtype=D)
    assert torch.equal(compile_step("euler", f)(x), x + f(x))
    assert torch.equal(compile_step("euler", f, step=0.25)(x), torch.add(x, f(x), alpha=0.25))
    gate = lambda x_t, phi: torch.sigmoid(x_t)  # noqa: E731
    assert torch.allclose(
        compile_step("euler", f, step=gate, h=0.5)(x),
        x + 0.5 * torch.sigmoid(x) * f(x),
        rtol=0,
        atol=1e-15,
    )


def test_rk4_block_equals_hand_written():
    f = _field(1)
    x = torch.randn(5, 4, dtype=D)
    k1 = f(x)
    k2 = f(x + 0.5 * k1)
    k3 = f(x + 0.5 * k2)
    k4 = f(x + k3)
    want = x + (k1 + 2 * k2 + 2 * k3 + k4) / 6
    assert (compile_step("rk4", f)(x) - want).abs().max() < 1e-13
    h = 0.2
    k1 = f(x)
    k2 = f(x + h * k1 / 3)
    k3 = f(x + h * (-k1 / 3 + k2))
    k4 = f(x + h * (k1 - k2 + k3))
    want38 = x + h * (k1 + 3 * k2 + 3 * k3 + k4) / 8
    assert (compile_step("rk38", f, h=0.2)(x) - want38).abs().max() < 1e-13


@pytest.mark.parametrize("name", EXPLICIT)
def test_stepper_matches_naive_reference(name):
    tab, net = TABLEAUS[name], _field(2)
    f = lambda t, y: torch.cos(t) * net(y) + torch.sin(3 * t)  # noqa: E731 non-autonomous
    t, h = torch.tensor(0.3, dtype=D), torch.tensor(0.17, dtype=D)
    y = torch.randn(3, 4, dtype=D)
    y1, err, ks = Stepper(tab).step(f, t, y, h)
    r1, rerr, _ = _reference_step(tab, f, t, y, h)
    assert (y1 - r1).abs().max() < 1e-14
    assert len(ks) == tab.stages
    assert (err is None) == (rerr is None)
    if err is not None:
        assert (err - rerr).abs().max() < 1e-15
    if tab.fsal:  # reused derivative is f(t1, y1) bitwise
        assert torch.equal(ks[-1], f(t + h, y1))


def test_stepper_per_sample_step_sizes_and_k1_reuse():
    net = _field(3)
    f = lambda t, y: net(y) * torch.exp(-t).reshape(-1, 1)  # noqa: E731
    y = torch.randn(3, 4, dtype=D)
    t, h = torch.tensor(0.1, dtype=D), torch.tensor([0.1, 0.2, 0.05], dtype=D)
    st = Stepper("dopri5")
    y1, err, _ = st.step(f, t, y, h)
    for b in range(3):
        g = lambda tt, yy: net(yy) * torch.exp(-tt)  # noqa: E731
        yb, eb, _ = st.step(g, t, y[b : b + 1], h[b])
        assert (y1[b] - yb[0]).abs().max() < 1e-15 and (err[b] - eb[0]).abs().max() < 1e-15
    g = lambda tt, yy: torch.sin(tt) + net(yy)  # noqa: E731
    hh = torch.tensor(0.1, dtype=D)
    base = st.step(g, t, y, hh)[0]
    assert torch.equal(st.step(g, t, y, hh, k1=g(t, y))[0], base)
    with pytest.raises(ValueError, match="explicit first stage"):
        Stepper("radau_iia5").step(g, t, y, hh, k1=g(t, y))


def _stiff_linear():
    lam = torch.tensor([-1.0, -50.0, -1000.0, 0.5], dtype=D)
    return lam, (lambda t, y: lam * y)


@pytest.mark.parametrize("name", IMPLICIT)
@pytest.mark.parametrize("solver", ["newton", "fixed_point"])
def test_implicit_step_on_linear_problem_equals_stability_function(name, solver):
    tab = TABLEAUS[name]
    lam, f = _stiff_linear()
    if solver == "fixed_point":  # fixed point converges only for non-stiff h·λ
        lam, f = lam[[0, 3]], (lambda t, y, L=lam[[0, 3]]: L * y)
    y0 = torch.ones(len(lam), dtype=D)
    h = torch.tensor(0.1, dtype=D)
    st = Stepper(tab, rtol=1e-13, atol=1e-13, implicit=solver, max_iter=200)
    y1 = st.step(f, torch.tensor(0.0, dtype=D), y0, h)[0]
    want = torch.tensor([tab.R(complex(0.1 * float(v))).real for v in lam], dtype=D)
    assert (y1 - want).abs().max() < 1e-12


@pytest.mark.parametrize("name", ["gauss_legendre4", "radau_iia5", "trapezoid"])
def test_matrix_free_newton_krylov_matches_dense_newton(name):
    """Beyond dense_limit Newton is matrix-free (GMRES, FD products): same step, same grads."""
    tab = TABLEAUS[name]
    lam, f = _stiff_linear()
    y0 = torch.ones(4, dtype=D)
    h, t = torch.tensor(0.1, dtype=D), torch.tensor(0.0, dtype=D)
    y1 = Stepper(tab, rtol=1e-13, atol=1e-13, dense_limit=0).step(f, t, y0, h)[0]
    want = torch.tensor([tab.R(complex(0.1 * float(v))).real for v in lam], dtype=D)
    assert (y1 - want).abs().max() < 1e-12
    net = _field(6, n=3)
    x = torch.randn(2, 3, dtype=D, requires_grad=True)
    grads = []
    for limit in (10_000, 0):
        blk = compile_step(name, net, h=0.6, rtol=1e-12, atol=1e-12)
        blk.stepper.dense_limit = limit
        y = blk(x)
        grads.append(torch.autograd.grad(y.square().sum(), [x, net[0].weight]))
        assert (
            y
            - blk.stepper.step(
                lambda _, z: net(z), torch.tensor(0.0, dtype=D), x, torch.tensor(0.6, dtype=D)
            )[0]
        ).abs().max() < 1e-11
    for a, b in zip(*grads):
        assert (a - b).abs().max() < 1e-9


@pytest.mark.parametrize("name", IMPLICIT)
def test_implicit_stage_equations_hold_to_tolerance(name):
    tab = TABLEAUS[name]
    f = lambda t, y: -(y**3) + torch.cos(2 * t) * y + torch.sin(t)  # noqa: E731
    y = torch.tensor([0.3, -1.2, 2.0], dtype=D)
    t, h = torch.tensor(0.4, dtype=D), torch.tensor(0.2, dtype=D)
    for rtol in (1e-6, 1e-12):
        ks = Stepper(tab, rtol=rtol, atol=rtol).step(f, t, y, h)[2]
        for i in range(tab.stages):
            z = y + h * sum(tab.a_f[i][j] * ks[j] for j in range(tab.stages))
            res = (ks[i] - f(t + tab.c_f[i] * h, z)) * h / (rtol + rtol * y.abs())
            assert res.abs().max() < 0.05  # stage error a small fraction of the tolerance


def test_implicit_nonconvergence_raises():
    _, f = _stiff_linear()
    with pytest.raises(StageSolveError, match="fixed_point"):
        Stepper("backward_euler", implicit="fixed_point").step(
            f, torch.tensor(0.0, dtype=D), torch.ones(4, dtype=D), torch.tensor(0.5, dtype=D)
        )
    with pytest.raises(StageSolveError, match="max_iter=1"):
        Stepper("gauss_legendre4", max_iter=1).step(
            lambda t, y: -(y**3),
            torch.tensor(0.0, dtype=D),
            torch.ones(2, dtype=D) * 3,
            torch.tensor(0.5, dtype=D),
        )


@pytest.mark.parametrize("name", ["euler", "rk4", "dopri5", "gauss_legendre4", "radau_iia3"])
def test_gradcheck_through_compiled_step(name):
    f = _field(4, n=3)
    gate = nn.Sequential(nn.Linear(3, 3), nn.Sigmoid()).double()
    blk = compile_step(name, f, step=lambda x_t, phi: gate(x_t), h=0.6, rtol=1e-12, atol=1e-12)
    x = torch.randn(2, 3, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(blk, (x,))
    # parameter gradients agree with finite differences too (implicit: via the IFT hook)
    w = f[0].weight
    loss = lambda: blk(x.detach()).square().sum()  # noqa: E731
    g = torch.autograd.grad(loss(), w)[0]
    assert abs(float(g[0, 1]) - _central_difference(loss, w, (0, 1))) < 1e-6


def test_validation_errors():
    f = _field()
    with pytest.raises(ValueError, match="single-stage explicit"):
        compile_step("rk4", f, shortcut=nn.Identity())
    with pytest.raises(ValueError, match="one per stage"):
        compile_step("rk4", [f, f])
    with pytest.raises(ValueError, match="did you mean 'dopri5'"):
        compile_step("dopri_5", f)  # "dopri" is as close to dopri8
    with pytest.raises(ValueError, match="did you mean 'newton'"):
        Stepper("backward_euler", implicit="newtn")
    with pytest.raises(TypeError):
        compile_step("euler", f, bogus=1)
    with pytest.raises(ValueError, match="combine"):
        compile_step("rk4", f, combine=nn.Identity())


class _Rec:
    def __init__(self):
        self.calls = []

    def emit(self, block, x_t, y, phi, dt):
        self.calls.append((x_t, y, phi, dt))


def test_shortcut_emit_and_retain_last():
    f = nn.Linear(4, 6).double()
    proj = nn.Linear(4, 6, bias=False).double()
    blk = compile_step("euler", f, shortcut=proj, step=0.5, h=2.0)
    rec = _Rec()
    blk._recorder = rec
    blk.retain_last = True
    x = torch.randn(3, 4, dtype=D)
    y = blk(x)
    assert torch.allclose(y, proj(x) + f(x), atol=1e-15)
    x_t, y_e, phi, dt = rec.calls[0]
    assert torch.equal(y_e, y) and dt == 1.0 and torch.allclose(y, x_t + dt * phi, atol=1e-15)
    last = blk.last
    assert torch.equal(last.phi, phi) and last.dt == 0.5 and last.h == 2.0 and last.error is None
    blk2 = compile_step("bosh3", _field(), h=0.1)
    blk2.retain_last = True
    x = torch.randn(2, 4, dtype=D)
    blk2(x)
    tab = TABLEAUS["bosh3"]
    want = 0.1 * sum(e * k for e, k in zip(tab.b_err_f, blk2.last.stages))
    assert (blk2.last.error - want).abs().max() < 1e-16 and len(blk2.last.stages) == 4


def test_time_input_and_per_stage_fields():
    seen = []

    class F(nn.Module):
        def forward(self, t, x):
            seen.append(float(t))
            return torch.sin(x) + t

    blk = compile_step("rk4", F(), h=0.2, time_input=True)
    blk(torch.zeros(2, dtype=D), 1.0)
    assert seen == pytest.approx([1.0, 1.1, 1.1, 1.2], abs=1e-15)
    fs = [_field(i) for i in range(2)]
    x = torch.randn(2, 4, dtype=D)
    k1 = fs[0](x)
    k2 = fs[1](x + 0.5 * k1)
    assert (compile_step("midpoint", fs)(x) - (x + k2)).abs().max() < 1e-15


def test_explicit_step_has_no_graph_breaks():
    dynamo = pytest.importorskip("torch._dynamo")

    class Gate(nn.Module):  # an SE-like adaptor: dt = σ(GAP(x_t)), (B, C, 1, 1)
        def forward(self, x_t, phi):
            return torch.sigmoid(x_t.mean((2, 3), keepdim=True))

    conv = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Tanh())
    blk = compile_step("rk4", conv, step=Gate())
    assert dynamo.explain(blk)(torch.randn(1, 2, 4, 4)).graph_break_count == 0
    st = Stepper("dopri5")
    ex = dynamo.explain(lambda t, y, h: st.step(lambda s, z: torch.sin(s) * conv(z), t, y, h))
    assert ex(torch.tensor(0.0), torch.randn(1, 2, 4, 4), torch.tensor(0.1)).graph_break_count == 0


# -- RKCNN ----------------------------------------------------------------------------------------
def _convs(c, s, n_upd):
    torch.manual_seed(5)
    fs = [nn.Conv2d(c * (j + 1), c, 3, padding=1).double() for j in range(s)]
    return fs + [nn.Conv2d(c * s, c, 3, padding=1).double() for _ in range(n_upd)]


@pytest.mark.parametrize("variant", ["E", "I", "R"])
def test_rkcnn_block_equals_hand_written(variant):
    c, s = 2, 3
    sweeps = 0 if variant == "E" else 2
    fs = _convs(c, s, 0 if variant == "E" else s)
    x = torch.randn(2, c, 5, 5, dtype=D)
    k = []
    for j in range(s):
        k.append(fs[j](torch.cat([x, *k], 1)))
    for _ in range(sweeps):
        old = list(k)
        for j in range(s):
            src = k if variant == "I" else old
            k[j] = fs[s + j](torch.cat([x, *(src[i] for i in range(s) if i != j)], 1))
    want = x + k[0] + k[1] + k[2]
    blk = compile_step(MethodGraph.rkcnn(variant, s, sweeps), fs)
    assert (blk(x) - want).abs().max() < 1e-13
    comb = nn.Conv2d(c * s, c, 1).double()
    blk = compile_step(
        MethodGraph.rkcnn(variant, s, sweeps),
        fs,
        combine=lambda ks: comb(torch.cat(ks, 1)),
        step=0.5,
    )
    assert (blk(x) - (x + 0.5 * comb(torch.cat(k, 1)))).abs().max() < 1e-13


def test_rkcnn_per_sweep_fields_and_errors():
    c, s = 2, 2
    fs = _convs(c, s, 2 * s)
    x = torch.randn(1, c, 4, 4, dtype=D)
    k = [fs[0](x)]
    k.append(fs[1](torch.cat([x, k[0]], 1)))
    for r in range(2):
        old = list(k)
        for j in range(s):
            k[j] = fs[s + r * s + j](torch.cat([x, old[1 - j]], 1))
    g = MethodGraph.rkcnn("R", s, 2, share_sweeps=False)
    assert (compile_step(g, fs)(x) - (x + k[0] + k[1])).abs().max() < 1e-13
    with pytest.raises(ValueError, match="needs 6 fields"):
        compile_step(g, fs[:4])


@pytest.mark.parametrize("solver", ["newton", "fixed_point"])
def test_implicit_step_without_gradients_skips_gradient_machinery(solver, monkeypatch):
    import odeattn.compile._implicit as imp
    from odeattn.solve import odeint

    f = _field(5, n=3).requires_grad_(False)
    y, t, h = torch.randn(2, 3, dtype=D), torch.tensor(0.1, dtype=D), torch.tensor(0.3, dtype=D)
    st = Stepper("gauss_legendre4", rtol=1e-10, atol=1e-10, implicit=solver)
    with torch.no_grad():
        ref = st.step(lambda tt, z: f(z), t, y, h)
    # grad mode on, but nothing requires grad: identical result, no graph, no Jacobian for it
    if solver == "fixed_point":  # Newton's iteration itself uses Jacobians; fixed point none
        monkeypatch.setattr(imp, "_dense_matrix", lambda *a, **k: pytest.fail("Jacobian formed"))
    out = st.step(lambda tt, z: f(z), t, y, h)
    for a, b in zip((out[0], *out[2]), (ref[0], *ref[2])):
        assert torch.equal(a, b) and not a.requires_grad and a.grad_fn is None
    monkeypatch.undo()
    sol = odeint(
        lambda tt, z: f(z), y, [0.0, 0.6], method="gauss_legendre4", options={"step_size": 0.2}
    )
    assert not sol.requires_grad
    sol.numpy()
    # the grad path is unchanged: y requiring grad, or only f's parameters (through the probe)
    yg = y.clone().requires_grad_()
    assert st.step(lambda tt, z: f(z), t, yg, h)[0].requires_grad
    f.requires_grad_(True)
    assert st.step(lambda tt, z: f(z), t, y, h)[0].requires_grad


def test_implicit_gmres_adjoint_with_parameter_gradients_only():
    """Beyond dense_limit the IFT adjoint is GMRES on VJPs w.r.t. K: parameters-only still works."""
    f = _field(6, n=3)
    x = torch.randn(40, 3, dtype=D)
    st = Stepper("gauss_legendre4", rtol=1e-12, atol=1e-12, dense_limit=16)
    t, h = torch.tensor(0.0, dtype=D), torch.tensor(0.3, dtype=D)
    w = f[0].weight
    loss = lambda: st.step(lambda tt, z: f(z), t, x, h)[0].square().sum()  # noqa: E731
    g = torch.autograd.grad(loss(), w)[0]
    assert abs(float(g[1, 0]) - _central_difference(loss, w, (1, 0))) < 1e-5
