"""odeint: calling convention, validation, grids, adaptive accuracy, stats, dense output, autograd."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from odeattn.solve import OPTIONS, _interp, last_stats, odeint
from odeattn.tableau import TABLEAUS

EMBEDDED = sorted(n for n, t in TABLEAUS.items() if t.b_err is not None)
D = torch.float64


def logistic_cos(t, y):  # y' = cos(t) y (1 - y), y = 1 / (1 + (1/y0 - 1) e^{-sin t})
    return torch.cos(t) * y * (1 - y)


def exact_logistic_cos(t: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + (1 / y0 - 1) * torch.exp(-torch.sin(t)))


# ---------------------------------------------------------------------------- convention
def test_shape_and_first_output_is_y0() -> None:
    y0 = torch.rand(2, 3, 4, dtype=D) * 0.5 + 0.2
    t = torch.linspace(0, 1, 5, dtype=D)
    for kw in ({"method": "dopri5"}, {"method": "rk4", "options": {"step_size": 0.1}}):
        ys = odeint(logistic_cos, y0, t, **kw)
        assert ys.shape == (5, 2, 3, 4)
        assert torch.equal(ys[0], y0)
        assert torch.allclose(ys, exact_logistic_cos(t.view(-1, 1, 1, 1), y0), atol=1e-6)


def test_float32_state_keeps_dtype() -> None:
    y0 = torch.full((3,), 0.3)
    ys = odeint(logistic_cos, y0, torch.tensor([0.0, 1.0]))
    assert ys.dtype == torch.float32
    assert torch.allclose(ys[-1], exact_logistic_cos(torch.tensor(1.0), y0), atol=1e-6)


def test_times_as_floats_equal_times_as_tensor() -> None:
    y0 = torch.tensor([0.2], dtype=D)
    a = odeint(logistic_cos, y0, [0.0, 0.5, 2.0], method="bosh3")
    b = odeint(logistic_cos, y0, torch.tensor([0.0, 0.5, 2.0], dtype=D), method="bosh3")
    assert torch.equal(a, b)


def test_single_time_returns_y0() -> None:
    y0 = torch.tensor([0.2, 0.4], dtype=D)
    assert torch.equal(odeint(logistic_cos, y0, [1.0]), y0[None])


# ---------------------------------------------------------------------------- validation
def test_unknown_method_lists_names() -> None:
    with pytest.raises(ValueError, match="dopri5") as e:
        odeint(logistic_cos, torch.ones(1), [0.0, 1.0], method="dopri")
    assert "gauss_legendre4" in str(e.value)


def test_unknown_option_names_key_and_closest() -> None:
    with pytest.raises(ValueError, match=r"'step_sise'.*'step_size'"):
        odeint(logistic_cos, torch.ones(1), [0.0, 1.0], method="rk4", options={"step_sise": 0.1})
    with pytest.raises(ValueError, match="'grid_constructor'"):  # a torchdiffeq-only option
        odeint(logistic_cos, torch.ones(1), [0.0, 1.0], options={"grid_constructor": None})


@pytest.mark.parametrize(
    "options, match",
    [
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": -0.1}, "step_size"),
        ({"step_size": True}, "step_size"),
        ({"step_size": 0.1, "first_step": 0.1}, "first_step"),
        ({"safety": 1.5}, "safety"),
        ({"ifactor": 0.5}, "ifactor"),
        ({"max_num_steps": 2.5}, "max_num_steps"),
        ({"interp": "cubic"}, "interp"),
        ({"implicit": "newton"}, "implicit"),  # dopri5 is explicit
    ],
)
def test_bad_option_values(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        odeint(logistic_cos, torch.ones(1), [0.0, 1.0], options=options)


def test_fixed_method_needs_step_size() -> None:
    with pytest.raises(ValueError, match="step_size"):
        odeint(logistic_cos, torch.ones(1), [0.0, 1.0], method="rk4")


@pytest.mark.parametrize("t", [[0.0, 1.0, 0.5], [0.0, 0.0], [0.0, math.inf]])
def test_times_must_be_strictly_monotone(t: list) -> None:
    with pytest.raises(ValueError, match="strictly"):
        odeint(logistic_cos, torch.ones(1), t)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="1-D"):
        odeint(logistic_cos, torch.ones(1), torch.zeros(2, 2))
    with pytest.raises(TypeError, match="y0"):
        odeint(logistic_cos, torch.ones(1, dtype=torch.long), [0.0, 1.0])
    with pytest.raises(ValueError, match="rtol"):
        odeint(logistic_cos, torch.ones(1), [0.0, 1.0], rtol=-1.0)
    with pytest.raises(ValueError, match="both"):
        odeint(logistic_cos, torch.ones(1), [0.0, 1.0], rtol=0.0, atol=0.0)


def test_options_table_documents_every_key() -> None:
    assert set(OPTIONS) >= {"step_size", "first_step", "max_num_steps", "implicit", "max_iter"}


# ---------------------------------------------------------------------------- fixed grid
def test_step_size_not_dividing_gives_equal_shorter_steps() -> None:
    """h = 0.3 on [0, 1]: ceil(1/0.3) = 4 equal steps of 0.25, exactly as step_size=0.25."""
    y0 = torch.tensor([0.2], dtype=D)
    a = odeint(logistic_cos, y0, [0.0, 1.0], method="rk4", options={"step_size": 0.3})
    st = last_stats()
    b = odeint(logistic_cos, y0, [0.0, 1.0], method="rk4", options={"step_size": 0.25})
    assert torch.equal(a, b)
    assert (st.accepted, st.rejected, st.nfe) == (4, 0, 16)


def test_off_grid_outputs_are_hit_exactly() -> None:
    """Outputs at 0.35 are step ends (no interpolation): continuing from there is identical."""
    y0 = torch.tensor([0.2], dtype=D)
    ys = odeint(logistic_cos, y0, [0.0, 0.35, 1.0], method="rk38", options={"step_size": 0.1})
    first = odeint(logistic_cos, y0, [0.0, 0.35], method="rk38", options={"step_size": 0.1})
    second = odeint(logistic_cos, first[-1], [0.35, 1.0], method="rk38", options={"step_size": 0.1})
    assert torch.equal(ys[1], first[-1]) and torch.equal(ys[2], second[-1])


def test_fixed_grid_fsal_saves_evaluations() -> None:
    odeint(
        logistic_cos,
        torch.tensor([0.2], dtype=D),
        [0.0, 1.0],
        method="dopri5",
        options={"step_size": 0.1},
    )
    assert last_stats().nfe == 7 + 9 * 6  # the first step has 7 stages, later ones reuse k7


def test_reverse_time_fixed_and_adaptive() -> None:
    y2 = exact_logistic_cos(torch.tensor(2.0, dtype=D), torch.tensor(0.2, dtype=D))
    t = torch.tensor([2.0, 1.0, 0.0], dtype=D)
    for kw in ({"method": "dopri5"}, {"method": "rk4", "options": {"step_size": 0.01}}):
        ys = odeint(logistic_cos, y2.reshape(1), t, rtol=1e-9, atol=1e-11, **kw)
        assert torch.allclose(
            ys[:, 0], exact_logistic_cos(t, torch.tensor(0.2, dtype=D)), atol=1e-8, rtol=0
        )


# ---------------------------------------------------------------------------- adaptive
def two_problems(t, y):  # y0' = cos t y0 (1 - y0);  y1' = -2 t y1²
    return torch.stack([torch.cos(t) * y[0] * (1 - y[0]), -2 * t * y[1] ** 2])


def exact_two(t: torch.Tensor) -> torch.Tensor:
    return torch.stack([1 / (1 + 9 * torch.exp(-torch.sin(t))), 1 / (1 + t * t)], dim=-1)


# RKF 2(1)'s estimate b − b̂ = (−1, 0, 1)/512 is ~10² below the local error of the propagated
# 2nd-order solution (measured 113–156 × tol here): the method's property, kept as torchdiffeq has it
LOOSE = {"fehlberg2": 200}


@pytest.mark.parametrize("name", EMBEDDED)
@pytest.mark.parametrize("rtol", [1e-4, 1e-7, 1e-10])
def test_adaptive_reaches_requested_tolerance(name: str, rtol: float) -> None:
    """|y − y_exact| ≤ 10 (atol + rtol |y|) at 41 output times (most of them between steps)."""
    atol = rtol * 1e-2
    t = torch.linspace(0, 6, 41, dtype=D)
    ys = odeint(
        two_problems, torch.tensor([0.1, 1.0], dtype=D), t, method=name, rtol=rtol, atol=atol
    )
    ex = exact_two(t)
    ratio = ((ys - ex).abs() / (atol + rtol * ex.abs())).max().item()
    assert ratio <= LOOSE.get(name, 10), f"{name} rtol={rtol}: error / tolerance = {ratio:.2f}"
    st = last_stats()
    assert st.adaptive and st.accepted > 0


@pytest.mark.parametrize("name", EMBEDDED)
def test_nfe_accounting_fsal(name: str) -> None:
    """nfe = 2 (f(t0, y0) and the initial-step probe) + (s − 1) per attempted step, + 1 per
    accepted step for non-FSAL pairs (f at the new point, the next step's k1)."""
    odeint(two_problems, torch.tensor([0.1, 1.0], dtype=D), [0.0, 6.0], method=name, rtol=1e-6)
    st, tab = last_stats(), TABLEAUS[name]
    extra = 0 if tab.fsal else st.accepted
    assert st.nfe == 2 + (tab.stages - 1) * st.steps + extra


def test_rejections_are_counted_and_solution_stays_accurate() -> None:
    """A sharp bump at t = 1 forces rejected steps; the result is still within tolerance."""

    def bump(t, y):
        return torch.exp(-(((t - 1) / 0.1) ** 2)).expand_as(y) * 100

    ys = odeint(bump, torch.zeros(1, dtype=D), [0.0, 2.0], rtol=1e-8, atol=1e-8)
    st = last_stats()
    assert st.rejected > 0
    exact = 100 * 0.1 * math.sqrt(math.pi) * math.erf(10.0)
    assert abs(ys[-1, 0].item() - exact) <= 10 * (1e-8 + 1e-8 * exact)


def test_max_num_steps_raises() -> None:
    with pytest.raises(RuntimeError, match="max_num_steps"):
        odeint(
            two_problems,
            torch.tensor([0.1, 1.0], dtype=D),
            [0.0, 6.0],
            rtol=1e-12,
            options={"max_num_steps": 5},
        )


def test_pi_controller_needs_fewer_or_equal_rejections_than_i() -> None:
    y0 = torch.tensor([0.1, 1.0], dtype=D)
    odeint(two_problems, y0, [0.0, 6.0], rtol=1e-9, options={"pcoeff": 0.0, "icoeff": 1.0})
    i_steps = last_stats().steps
    odeint(two_problems, y0, [0.0, 6.0], rtol=1e-9)
    pi_steps = last_stats().steps
    assert pi_steps <= i_steps * 1.1


# ---------------------------------------------------------------------------- dense output
def test_hermite_and_quartic_reproduce_polynomials() -> None:
    """Hermite is exact on cubics, the quartic on quartics (given exact y_mid)."""
    p = [0.3, -1.2, 0.7, 2.0, -0.9]  # p(θ) = Σ p_k θ^k (quartic); cubic part p[:4]

    def poly(th, coef):
        return sum(c * th**k for k, c in enumerate(coef))

    def dpoly(th, coef):
        return sum(k * c * th ** (k - 1) for k, c in enumerate(coef) if k)

    def T(x):
        return torch.tensor([x], dtype=D)

    for th in (0.1, 0.5, 0.77):
        cub = p[:4]
        got = _interp.hermite(
            T(th), T(poly(0, cub)), T(poly(1, cub)), T(dpoly(0, cub)), T(dpoly(1, cub))
        )
        assert abs(got.item() - poly(th, cub)) < 1e-14
        got = _interp.quartic(
            T(th), T(poly(0, p)), T(poly(1, p)), T(dpoly(0, p)), T(dpoly(1, p)), T(poly(0.5, p))
        )
        assert abs(got.item() - poly(th, p)) < 1e-14


def test_dopri5_mid_weights_sum_to_half() -> None:
    from fractions import Fraction

    assert sum(TABLEAUS["dopri5"].b_mid) == Fraction(1, 2)


def test_interp_modes_for_dopri5() -> None:
    """dopri5's quartic and step clipping meet the tolerance at 61 outputs; cubic Hermite on
    dopri5's long steps does not (O(h⁴) interpolation error), which is why 'auto' avoids it."""
    t = torch.linspace(0, 6, 61, dtype=D)
    ex = exact_two(t)
    err = {}
    for interp in ("auto", "hermite", "clip"):
        ys = odeint(
            two_problems,
            torch.tensor([0.1, 1.0], dtype=D),
            t,
            rtol=1e-6,
            atol=1e-8,
            options={"interp": interp},
        )
        err[interp] = ((ys - ex).abs() / (1e-8 + 1e-6 * ex.abs())).max().item()
    assert err["auto"] <= 10 and err["clip"] <= 10
    assert err["hermite"] > 5 * err["auto"]


# ---------------------------------------------------------------------------- autograd
@pytest.mark.parametrize(
    "method, options",
    [
        ("rk4", {"step_size": 0.25}),
        ("dopri5", None),
        ("gauss_legendre4", {"step_size": 0.5}),
    ],
)
def test_gradcheck_through_odeint(method: str, options: dict | None) -> None:
    """Gradients w.r.t. y0 and a weight of f (discretise-then-optimise; for dopri5 the step
    sizes are not differentiated, which changes the result only at the tolerance level)."""
    t = torch.tensor([0.0, 0.7, 1.5], dtype=D)

    def fn(y0, w):
        return odeint(
            lambda tt, y: torch.tanh(y @ w) * torch.cos(tt) - 0.1 * y,
            y0,
            t,
            method=method,
            rtol=1e-10,
            atol=1e-12,
            options=options,
        )

    y0 = torch.tensor([[0.3, -0.6], [1.0, 0.2]], dtype=D, requires_grad=True)
    w = torch.tensor([[-0.5, 0.3], [0.2, -0.4]], dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (y0, w), atol=1e-6, rtol=1e-4)


def test_fixed_grid_solve_has_no_graph_breaks() -> None:
    """torch._dynamo traces a whole fixed-grid solve as one graph (output times as floats; a
    tensor ``t`` costs one break: its values are read back once, as torchdiffeq does)."""
    import torch._dynamo as dynamo

    lin = torch.nn.Linear(4, 4)

    def solve(y):
        return odeint(
            lambda t, x: torch.tanh(lin(x)) * t,
            y,
            [0.0, 0.5, 1.0],
            method="rk38",
            options={"step_size": 0.25},
        )

    y0 = torch.randn(3, 4)
    explanation = dynamo.explain(solve)(y0)
    dynamo.reset()
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert torch.allclose(torch.compile(solve, backend="eager", fullgraph=True)(y0), solve(y0))
    dynamo.reset()


def test_steps_option_with_tensor_t_has_no_graph_breaks() -> None:
    """``options={"steps": n}`` reads no time back: a tensor ``t`` compiles as one graph, and
    the result equals the eager solve and the ``step_size`` grid it describes."""
    import torch._dynamo as dynamo

    lin = torch.nn.Linear(4, 4)

    def solve(y, t):
        return odeint(
            lambda s, x: torch.tanh(lin(x)) * s, y, t, method="rk38", options={"steps": 2}
        )

    y0, t = torch.randn(3, 4), torch.tensor([0.0, 0.5, 1.0])
    explanation = dynamo.explain(solve)(y0, t)
    dynamo.reset()
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(solve, backend="eager", fullgraph=True)(y0, t)
    dynamo.reset()
    eager = solve(y0, t)
    torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-7)
    by_h = odeint(
        lambda s, x: torch.tanh(lin(x)) * s, y0, t, method="rk38", options={"step_size": 0.25}
    )
    torch.testing.assert_close(eager, by_h, rtol=1e-6, atol=1e-7)


def test_steps_option_converges_and_differentiates_t() -> None:
    """n equal steps per interval: rk4's error falls as n^-4 on a non-autonomous nonlinear ODE,
    and d y(T)/d T is f(T, y(T)) (fixed grids differentiate the step (t_i − t_{i−1})/n)."""

    def f(t, y):
        return y * (1 - y) + torch.sin(t)

    y0 = torch.tensor([0.3], dtype=D)
    ref = odeint(f, y0, [0.0, 2.0], method="dopri5", rtol=1e-13, atol=1e-14)[-1]
    errs = [
        (
            odeint(f, y0, torch.tensor([0.0, 2.0], dtype=D), method="rk4", options={"steps": n})[-1]
            - ref
        )
        .abs()
        .item()
        for n in (8, 16, 32)
    ]
    slopes = [math.log2(a / b) for a, b in itertools.pairwise(errs)]
    assert all(abs(s - 4) < 0.3 for s in slopes), slopes
    t = torch.tensor([0.0, 2.0], dtype=D, requires_grad=True)
    y = odeint(f, y0, t, method="rk4", options={"steps": 64})
    (g,) = torch.autograd.grad(y[-1].sum(), t)
    torch.testing.assert_close(g[1], f(t[1].detach(), y[-1].detach())[0], rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"steps": True}, "steps"),
        ({"steps": 4, "step_size": 0.1}, "give one of them"),
        ({"steps": 4, "rtol_x": 1}, "unknown"),
        ({"steps": 4, "max_step": 0.1}, "only applies to adaptive"),
    ],
)
def test_steps_option_errors(options, match) -> None:
    with pytest.raises(ValueError, match=match):
        odeint(lambda t, y: -y, torch.ones(2), [0.0, 1.0], method="rk4", options=options)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("options", [{"step_size": 0.25}, {"steps": 3}, {}, {"per_sample": True}])
@pytest.mark.parametrize("backwards", [False, True])
def test_func_gets_time_in_the_state_dtype(dtype, options, backwards) -> None:
    """As torchdiffeq: a float32 state sees a float32 time (a float64 0-d time would make every
    use of t in f a promotion); steps are still placed in float64."""
    seen = set()

    def f(t, y):
        seen.add(t.dtype)
        return torch.cos(t)[..., None] * y if t.dim() else torch.cos(t) * y

    t = [1.0, 0.0] if backwards else [0.0, 1.0]
    y0 = torch.ones(2, 3, dtype=dtype)
    out = odeint(f, y0, t, method="dopri5", options=options)
    assert seen == {dtype} and out.dtype == dtype
    exact = math.exp(math.sin(t[-1]) - math.sin(t[0]))
    assert abs(out[-1, 0, 0].item() - exact) < 1e-5  # 3 fixed dopri5 steps: truncation ~1e-6


# ---------------------------------------------------------------------------- per-sample steps
def per_sample_field(t, y):  # t is (B,) in per-sample mode, 0-d otherwise
    c = torch.cos(t)
    return (c[:, None] if c.dim() else c) * y * (1 - y)


@pytest.mark.parametrize("name", ["dopri5", "fehlberg45"])  # FSAL and non-FSAL
def test_per_sample_steps_are_batch_independent(name: str) -> None:
    """Each sample's solution and step counts equal those of solving it alone (torchode
    semantics), and every sample meets the tolerance."""
    y0 = torch.tensor([[0.1, 0.2], [0.5, 0.6], [0.01, 0.9]], dtype=D)
    t = torch.linspace(0, 6, 7, dtype=D)
    opts = {"per_sample": True}
    ys = odeint(per_sample_field, y0, t, method=name, rtol=1e-8, atol=1e-10, options=opts)
    st = last_stats()
    ex = 1 / (1 + (1 / y0 - 1) * torch.exp(-torch.sin(t)).view(-1, 1, 1))
    # (fehlberg45 reaches ~13x here: its estimate is RMS over the sample's 2 components)
    assert ((ys - ex).abs() / (1e-10 + 1e-8 * ex.abs())).max() <= (10 if name == "dopri5" else 20)
    assert len(set(st.accepted_per_sample.tolist())) > 1  # the samples really differ
    for b in range(3):
        alone = odeint(
            per_sample_field, y0[b : b + 1], t, method=name, rtol=1e-8, atol=1e-10, options=opts
        )
        sb = last_stats()
        assert torch.allclose(alone[:, 0], ys[:, b], rtol=0, atol=1e-15)
        assert (sb.accepted, sb.rejected) == (
            int(st.accepted_per_sample[b]),
            int(st.rejected_per_sample[b]),
        )


def test_per_sample_validation() -> None:
    with pytest.raises(ValueError, match="per_sample"):
        odeint(logistic_cos, torch.tensor(0.2), [0.0, 1.0], options={"per_sample": True})
    with pytest.raises(ValueError, match="per_sample"):
        odeint(logistic_cos, torch.ones(2), [0.0, 1.0], options={"per_sample": 1})


def test_gradient_wrt_output_times_on_fixed_grid() -> None:
    """d y(T)/dT = f(T, y(T)) and d y(T)/dt0 = −Φ f(t0, y0) with Φ = ∂y(T)/∂y0."""
    t = torch.tensor([0.0, 1.5], dtype=D, requires_grad=True)
    y0 = torch.tensor([0.2], dtype=D, requires_grad=True)
    ys = odeint(logistic_cos, y0, t, method="rk4", options={"step_size": 0.01})
    g_t, g_y0 = torch.autograd.grad(ys[-1].sum(), (t, y0))
    yT = ys[-1].detach()
    assert abs(g_t[1] - logistic_cos(t[1].detach(), yT).item()) < 1e-9
    assert abs(g_t[0] + g_y0.item() * logistic_cos(t[0].detach(), y0.detach()).item()) < 1e-9


# ---------------------------------------------------------------------------- adjoint
class TimeMLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = torch.nn.Parameter(torch.randn(3, 8, dtype=D, generator=g) / 2)
        self.w2 = torch.nn.Parameter(torch.randn(8, 3, dtype=D, generator=g) / 2)

    def forward(self, t, y):
        return torch.tanh(y @ self.w1) @ self.w2 * torch.cos(t)


@pytest.mark.parametrize("method, options", [("dopri5", {}), ("rk4", {"step_size": 0.01})])
def test_adjoint_matches_backprop(method: str, options: dict) -> None:
    """Backsolve adjoint gradients (w.r.t. y0 and θ, loss on several outputs) equal plain
    autograd through the solver up to the solver tolerance; the forward values are identical."""
    f = TimeMLP()
    y0 = torch.randn(2, 3, dtype=D, generator=torch.Generator().manual_seed(1), requires_grad=True)
    t = torch.tensor([0.0, 0.5, 1.2], dtype=D)
    grads = []
    for adjoint in (False, True):
        ys = odeint(
            f, y0, t, method=method, rtol=1e-10, atol=1e-12, options={**options, "adjoint": adjoint}
        )
        grads.append(torch.autograd.grad((ys[1:] ** 2).sum(), [y0, *f.parameters()]))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-8)


def test_adjoint_needs_a_module() -> None:
    with pytest.raises(ValueError, match=r"nn\.Module"):
        odeint(logistic_cos, torch.ones(1, dtype=D), [0.0, 1.0], options={"adjoint": True})
