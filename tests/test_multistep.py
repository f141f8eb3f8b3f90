"""Linear multistep method graphs (Adams–Bashforth, Adams PECE, LM-ResNet) and their compiled
steps: uniform-step weights against the closed forms, variable-step weights against the AB2
formula, convergence orders (error slopes on refined variable grids) on a nonlinear,
non-autonomous problem with a closed-form solution."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction as F

import pytest
import torch

from odeattn.compile import MultistepStep, compile_step
from odeattn.graph import GraphKind, MethodGraph, adams_weights

AB = {
    1: [F(1)],
    2: [F(3, 2), F(-1, 2)],
    3: [F(23, 12), F(-16, 12), F(5, 12)],
    4: [F(55, 24), F(-59, 24), F(37, 24), F(-9, 24)],
}
AM = {  # corrector weights on f_{n+1}, f_n, f_{n-1}, … (order = number of nodes)
    1: [F(1)],
    2: [F(1, 2), F(1, 2)],
    3: [F(5, 12), F(8, 12), F(-1, 12)],
    4: [F(9, 24), F(19, 24), F(-5, 24), F(1, 24)],
}


def _edge_weights(g: MethodGraph, target: str) -> list[F]:
    edges = sorted(
        (e["lag"], F(e["exact"])) for _, _, e in g.graph.in_edges(target, data=True) if "lag" in e
    )
    return [w for _, w in edges]


@pytest.mark.parametrize("p", [1, 2, 3, 4])
def test_uniform_weights_are_the_adams_coefficients(p):
    ab = MethodGraph.multistep("adams_bashforth", p)
    assert ab.kind is GraphKind.MULTISTEP and _edge_weights(ab, "phi") == AB[p]
    assert ab.history == (0, p - 1)
    pece = MethodGraph.multistep("adams_pece", p)
    assert _edge_weights(pece, "pred") == AB[p]
    assert _edge_weights(pece, "phi") == AM[p]
    assert pece.is_explicit and [len(b) for b in pece.schedule()] == [1, 1]


def test_variable_step_ab2_weights_closed_form():
    h, hp = 0.3, 0.1  # t_{n+1} - t_n, t_n - t_{n-1}
    w = adams_weights([1.0, 1.0 - hp], 1.0, 1.0 + h)
    assert w[0] == pytest.approx(h * (1 + h / (2 * hp)), rel=1e-13)
    assert w[1] == pytest.approx(-(h**2) / (2 * hp), rel=1e-13)


def _exact(t: float) -> float:
    return 1.0 / (1.0 + t * t) + math.sin(t)


def _f(t, y):  # y' = -2t (y - sin t)^2 + cos t: nonlinear, non-autonomous; solution _exact
    return -2 * t * (y - torch.sin(t)) ** 2 + torch.cos(t)


def _solve(graph: MethodGraph, n: int, T: float = 3.0) -> float:
    """|x(T) − exact| on the variable grid t(s) = T (s + 0.3 s (1 − s)) (steps vary 0.7…1.3 ×
    T/n), float64, exact start-up values (the first order − 1 points)."""
    step = MultistepStep(graph)
    ts = [T * (s + 0.3 * s * (1 - s)) for s in (i / n for i in range(n + 1))]
    p, dt = graph.order, torch.float64
    derivs = tuple(
        _f(torch.tensor(ts[j], dtype=dt), torch.tensor(_exact(ts[j]), dtype=dt))
        for j in range(p - 2, -1, -1)
    )
    x, hist = torch.tensor(_exact(ts[p - 1]), dtype=dt), ((), derivs)
    for i in range(p - 1, n):
        x, hist = step.step(_f, [ts[i + 1], *(ts[i - j] for j in range(p))], x, hist)
    return abs(float(x) - _exact(T))


@pytest.mark.parametrize("scheme", ["adams_bashforth", "adams_pece"])
@pytest.mark.parametrize("p", [1, 2, 3, 4, 5, 6])
def test_convergence_order_on_a_variable_grid(scheme, p):
    """Slopes log2(e_n / e_2n), n = 80, 160, 320, approach the order p (for p = 5, 6 the error
    constant is small, the slopes are pre-asymptotic: the last is at least p − 0.3 there)."""
    g = MethodGraph.multistep(scheme, p)
    errs = [_solve(g, n) for n in (80, 160, 320)]
    slopes = [math.log2(a / b) for a, b in itertools.pairwise(errs)]
    if p <= 4:
        assert all(abs(s - p) < 0.2 for s in slopes), (errs, slopes)
    else:
        assert slopes[-1] > p - 0.3 and errs[-1] < 1e-11, (errs, slopes)


def test_self_starting_lowers_the_order_and_still_converges():
    step = MultistepStep(MethodGraph.multistep("adams_bashforth", 3))
    y = torch.tensor(1.0, dtype=torch.float64)
    x, hist = y, ((), ())
    for i in range(50):  # y' = -y on [0, 1], h = 1/50, no history given
        x, hist = step.step(
            lambda t, y: -y, [(i + 1) / 50, i / 50, (i - 1) / 50, (i - 2) / 50], x, hist
        )
    assert len(hist[1]) == 2
    assert abs(float(x) - math.exp(-1)) < 1e-4


def test_lm_step_values_and_compile():
    field = torch.nn.Linear(3, 3)
    block = compile_step(MethodGraph.multistep("lm"), field, k_init=0.25)
    assert isinstance(block, MultistepStep) and block.k.item() == 0.25
    x0, x1 = torch.randn(2, 3), torch.randn(2, 3)
    y1, hist = block(x0)  # no x_{n-1}: plain residual step
    torch.testing.assert_close(y1, x0 + field(x0))
    y2, _ = block(x1, hist)
    torch.testing.assert_close(y2, 0.75 * x1 + 0.25 * x0 + field(x1))


def test_unknown_scheme_and_bad_order_are_errors():
    with pytest.raises(ValueError, match="did you mean 'adams_pece'"):
        MethodGraph.multistep("adams_pec", 2)
    with pytest.raises(ValueError, match="`order` must be an int in 1…6"):
        MethodGraph.multistep("adams_bashforth", 7)
    with pytest.raises(ValueError, match="unit-step"):
        compile_step(MethodGraph.multistep("lm"), torch.nn.Identity(), step=0.5)


def test_torchdiffeq_adams_weights_float_path_equals_tensor_path():
    """odeattn.torchdiffeq's fixed-grid Adams: the Python-float weights (no time gradient) equal
    the differentiable tensor ones and the graph's adams_weights."""
    from odeattn.torchdiffeq._fixed import Adams

    ts = [torch.tensor(x, dtype=torch.float64) for x in (1.0, 0.8, 0.5, 0.45)]
    a, b = ts[0], torch.tensor(1.3, dtype=torch.float64)
    fast = Adams._weights(ts, a, b)
    slow = Adams._weights(ts, a.clone().requires_grad_(), b)
    ref = adams_weights([float(t) - 1.0 for t in ts], 0.0, 0.3)
    for x, y, r in zip(fast, slow, ref):
        assert float(x) == pytest.approx(float(y.detach()), rel=1e-12, abs=1e-15)
        assert float(x) == pytest.approx(r, rel=1e-12, abs=1e-15)


def test_multistep_graph_takes_no_step_node_argument():
    with pytest.raises(TypeError):
        MethodGraph.multistep("lm", step="learnable")
    assert MethodGraph.multistep("lm").graph.nodes["dt"]["step"] == "none"
