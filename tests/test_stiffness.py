"""The NSI recorder against NSI computed by hand from full stored features; bit-exactness; measure()."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from odeattn.compile._record import Recordable
from odeattn.stiffness import measure, record, tns

# synthetic stages of 1-2 measured blocks test the arithmetic; their warning is issue 21's
pytestmark = pytest.mark.filterwarnings("ignore::odeattn.stiffness.DegenerateStageWarning")


class _Block(nn.Module, Recordable):
    """A tiny residual block: optional projection shortcut, optional SE-like gate Δt ∈ (0, 1)."""

    def __init__(self, cin: int, cout: int, gated: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else None
        self.f = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.Tanh())
        self.gate = nn.Linear(cout, cout) if gated else None
        self.store: list[tuple[torch.Tensor, ...]] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_t = self.proj(x) if self.proj is not None else x
        phi = self.f(x)  # (B, C, H, W)
        if self.gate is None:
            dt: torch.Tensor | float = 1.0
            y = x_t + phi
        else:
            dt = torch.sigmoid(self.gate(phi.mean((2, 3))))[:, :, None, None]  # (B, C, 1, 1)
            y = x_t + dt * phi
        if self.store is not None:  # full features, for the by-hand reference
            self.store.append((x_t.clone(), y.clone(), torch.as_tensor(dt).clone()))
        self._emit(x_t, y, phi, dt)
        return y


class _Net(nn.Module):
    def __init__(self, gated: bool = True) -> None:
        super().__init__()
        widths = [(2, 4), (4, 4), (4, 4), (4, 6), (6, 6), (6, 6), (6, 6)]
        stages = [0, 0, 0, 1, 1, 1, 1]
        self.blocks = nn.ModuleList()
        index = 0
        for i, ((cin, cout), s) in enumerate(zip(widths, stages)):
            index = 0 if i == 0 or stages[i - 1] != s else index + 1
            self.blocks.append(_Block(cin, cout, gated).set_position(s, index))
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return self.head(x.mean((2, 3)))


def _net(gated=True, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return _Net(gated).to(dtype)


def _by_hand(net: _Net, x: torch.Tensor, include_first: bool):
    for b in net.blocks:
        b.store = []
    with torch.no_grad():
        net(x)
    step, fd, stage = [], [], []
    for b in net.blocks:
        (x_t, y, dt), b.store = b.store[0], None
        if b.first_in_stage and not include_first:
            continue
        nx = x_t.flatten(1).norm(dim=1)
        fd.append((y - x_t).flatten(1).norm(dim=1) / nx)
        step.append(((y - x_t) / dt).flatten(1).norm(dim=1) / nx)
        stage.append(b.stage_id)
    return torch.stack(step, 1), torch.stack(fd, 1), stage


@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("include_first", [False, True])
def test_recorder_nsi_equals_hand_computed(gated, include_first):
    net = _net(gated)
    x = torch.randn(5, 2, 6, 6, dtype=torch.float64)
    step, fd, stage = _by_hand(net, x, include_first)
    with record(net, include_first=include_first) as rec:
        net(x)
    assert rec.stage == stage == ([0, 0, 0, 1, 1, 1, 1] if include_first else [0, 0, 1, 1, 1])
    torch.testing.assert_close(rec.nsi("step"), step, rtol=1e-12, atol=0)
    torch.testing.assert_close(rec.nsi("fd"), fd, rtol=1e-12, atol=0)
    assert rec.nsi().shape == (5, len(stage))
    if gated:  # a gate Δt < 1 makes the two definitions differ: step-normalised is larger
        assert (rec.nsi("step") > rec.nsi("fd")).all()
    else:
        torch.testing.assert_close(rec.nsi("step"), rec.nsi("fd"), rtol=1e-12, atol=0)


@pytest.mark.parametrize("shape", [None, (3, 1, 1, 1), (3, 4, 1, 1), (3, 1, 5, 5), (3, 4, 5, 5)])
def test_step_norms_match_forming_the_increment(shape):
    from odeattn.stiffness._recorder import _step_norms

    torch.manual_seed(1)
    phi = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    dt = 0.7 if shape is None else torch.rand(shape, dtype=torch.float64)
    n_phi, n_diff = _step_norms(phi, dt)
    torch.testing.assert_close(n_phi, phi.flatten(1).norm(dim=1), rtol=1e-14, atol=0)
    torch.testing.assert_close(n_diff, (dt * phi).flatten(1).norm(dim=1), rtol=1e-14, atol=0)


@pytest.mark.parametrize("dt", [1.0, 0.7, -2.0])
def test_step_norms_float_step_including_the_unit_shortcut(dt):
    from odeattn.stiffness._recorder import _step_norms

    torch.manual_seed(2)
    phi = torch.randn(3, 4, 5, 5).contiguous(memory_format=torch.channels_last)
    n_phi, n_diff = _step_norms(phi, dt)  # dt == 1.0 returns ‖Φ‖ itself, no extra op
    ref = phi.double().flatten(1).norm(dim=1)
    torch.testing.assert_close(n_phi.double(), ref, rtol=1e-6, atol=0)
    torch.testing.assert_close(n_diff.double(), abs(dt) * ref, rtol=1e-6, atol=0)


def test_recording_changes_no_bit_of_output_or_gradients():
    net = _net(True, torch.float32)
    x = torch.randn(4, 2, 6, 6)
    out = net(x)
    out.square().sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    with record(net) as rec:
        out2 = net(x)
        out2.square().sum().backward()
    assert torch.equal(out, out2)
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, net.parameters()))
    assert rec.nsi().shape == (4, 5) and not rec.nsi().requires_grad
    assert all(b.__dict__.get("_recorder") is None for b in net.blocks)  # detached on exit


def test_batches_concatenate_and_repeat_calls_are_columns():
    net = _net(False)
    x = torch.randn(7, 2, 6, 6, dtype=torch.float64)
    with record(net) as rec, torch.no_grad():
        net(x[:3])
        net(x[3:])
    with record(net) as whole, torch.no_grad():
        net(x)
    torch.testing.assert_close(rec.nsi(), whole.nsi(), rtol=1e-12, atol=0)
    assert rec.names == ["blocks.1", "blocks.2", "blocks.4", "blocks.5", "blocks.6"]

    class Twice(nn.Module):  # a shared block applied twice per forward: two columns
        def __init__(self):
            super().__init__()
            self.b = _Block(2, 2, False).set_position(0, 1)

        def forward(self, x):
            return self.b(self.b(x))

    twice = Twice().double()
    with record(twice) as rec2, torch.no_grad():
        twice(x[:2])
        twice(x[2:])
    assert rec2.names == ["b", "b#1"] and rec2.nsi().shape == (7, 2)


def test_recorder_errors():
    with pytest.raises(ValueError, match="no odeattn Recordable"), record(nn.Linear(2, 2)):
        pass
    net = _net()
    with record(net) as rec:
        pass
    with pytest.raises(RuntimeError, match="no block was recorded"):
        rec.nsi()
    with record(net) as rec, torch.no_grad():
        net(torch.randn(2, 2, 6, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="did you mean 'step'"):
        rec.nsi("stepp")


def test_measure_report_is_json_and_consistent():
    net = _net(True, torch.float32)
    x = torch.randn(40, 2, 6, 6)
    y = torch.randint(0, 3, (40,))
    rep = measure(net, (x, y), batch_size=16, per_sample=True, m=[(0.0, 0.0), (0.2, 0.1)])
    json.dumps(rep)
    with record(net) as rec, torch.no_grad():
        logits = net(x)
    assert rep["definition"] == "step" and rep["n_samples"] == 40 and rep["n_blocks"] == 5
    assert rep["tns"] == pytest.approx(tns(rec.nsi(), rec.stage), rel=1e-6)
    assert rep["tns_by_definition"]["fd"] == pytest.approx(tns(rec.nsi("fd"), rec.stage), rel=1e-6)
    assert rep["accuracy"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    means = [b["mean"] for b in rep["blocks"]]
    np.testing.assert_allclose(means, rec.nsi().mean(0).numpy(), rtol=1e-6)
    assert [b["stage"] for b in rep["blocks"]] == [0, 0, 1, 1, 1]
    z, mu = rec.nsi().numpy(), np.zeros((40, 5))
    for cols in ([0, 1], [2, 3, 4]):
        mu[:, cols] = z[:, cols].mean(1, keepdims=True)
    for entry in rep["stiffness_proportion"]:
        thr = np.maximum(mu * (1 + entry["m1"]), entry["m2"])
        assert entry["p_hat"] == pytest.approx((z >= thr).mean(), abs=1e-9)
    assert np.mean(rep["per_sample"]["tns"]) == pytest.approx(rep["tns"])
    assert net.training  # measure restores the mode


# --- linear-ODE view: SI, SAI (Eq. 3) along odeattn.odeint solves, Theorem 2 -----------------


def test_stiffness_index_known_spectra():
    from odeattn.stiffness.linear_ode import stiffness_index, symmetric_system

    assert stiffness_index(np.diag([-1.0, -50.0, -0.5])) == 50.0
    assert stiffness_index([[-1.0, 10.0], [-10.0, -1.0]]) == pytest.approx(1.0)  # λ = −1 ± 10i
    a, q = symmetric_system([-3.0, -40.0, -0.1], seed=2)
    torch.testing.assert_close(q.T @ q, torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.linalg.eigvalsh(a.numpy()), [-40.0, -3.0, -0.1], rtol=1e-12)
    assert stiffness_index(a) == pytest.approx(40.0, rel=1e-12)


def test_sai_along_odeint_trajectory_matches_closed_form():
    from odeattn.stiffness.linear_ode import sai, solve_linear, symmetric_system

    lam = np.array([-30.0, -2.0, -0.3])
    a, q = symmetric_system(lam, seed=1)
    y0 = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    t = torch.linspace(0.0, 0.5, 11, dtype=torch.float64)
    traj = solve_linear(a, y0, t, method="dopri5", rtol=1e-11, atol=1e-13)
    got = sai(traj, t)  # (10,)
    h = 0.05
    coef = (q.T @ y0).numpy()[None, :] * np.exp(lam[None, :] * t[:-1, None].numpy())  # (10, 3)
    exact = np.sqrt((coef**2 * (np.expm1(lam * h) / h) ** 2).sum(1) / (coef**2).sum(1))
    np.testing.assert_allclose(got.numpy(), exact, rtol=1e-7)
    assert got[0] > got[-1]  # the stiff mode dies out along the trajectory


def test_theorem2_ratio_tends_to_sqrt_c_when_si_is_large():
    from odeattn.stiffness.linear_ode import examine_theorem2

    rows = examine_theorem2([3.0, 10.0, 100.0, 1000.0], h=1e-7)  # h·SI ≪ 1 throughout
    for r in rows:
        assert r["sai"] == pytest.approx(r["sai_exact"], rel=1e-7)
    q = [abs(r["q"]) for r in rows]
    assert q[0] > q[1] > q[2] > q[3] and q[3] < 1e-4
    assert rows[-1]["ratio"] == pytest.approx(rows[-1]["sqrt_c"], rel=1e-3)
    # with a coarse observation spacing (h·SI ≫ 1) SAI saturates near 1/h instead of tracking SI
    coarse = examine_theorem2([100.0, 1000.0], h=0.05)
    assert coarse[1]["sai"] == pytest.approx(coarse[0]["sai"], rel=0.01)
    assert coarse[1]["sai"] == pytest.approx(coarse[1]["sai_exact"], rel=1e-7)


# --- plain vs SE pre-act ResNet briefly trained on digits --------------------------------------


@pytest.mark.slow
def test_plain_vs_se_trained_on_digits_records_tns(capsys):
    """StepNet says attention nets have larger TNS; we record and print, never assert that claim."""
    from odeattn.data import load_dataset
    from odeattn.models import create_model
    from odeattn.train import RECIPES, fit

    data = load_dataset("digits")
    cfg = RECIPES["digits"].with_epochs(8)
    rows = {}
    for name, kw in (("plain", {}), ("se", {"adaptor": "se"})):
        torch.manual_seed(0)
        model = create_model("digits_resnet", blocks=(3, 3, 3), **kw)
        metrics = fit(model, data, cfg)
        rep = measure(model, data, per_sample=True)
        with record(model) as rec, torch.no_grad():  # the report is the recorder's exact TNS
            model.eval()
            from odeattn.data import BatchTransform

            model(BatchTransform(data.mean, data.std).normalize(data.test.x))
        assert rep["tns"] == pytest.approx(tns(rec.nsi(), rec.stage), rel=1e-6)
        assert rep["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-9)
        assert rep["accuracy"] > 0.85 and np.isfinite(rep["tns"]) and rep["tns"] > 0
        rows[name] = (rep["accuracy"], rep["tns"], rep["tns_by_definition"]["fd"])
    with capsys.disabled():
        for name, (acc, t_step, t_fd) in rows.items():
            print(
                f"\n[digits_resnet 3-3-3, 8 epochs] {name}: test acc {acc:.4f}, "
                f"TNS(step) {t_step:.5f}, TNS(fd) {t_fd:.5f}"
            )


def test_record_batch_is_the_recorder_and_leaves_the_model_unchanged():
    from odeattn.stiffness import record_batch

    net = _net(gated=True)
    model = nn.Sequential(nn.BatchNorm2d(2).double(), net).eval()  # a train pass moves its stats
    x = 3.0 + torch.randn(5, 2, 4, 4, dtype=torch.float64)
    x_bn = nn.functional.batch_norm(x, None, None, training=True)  # batch statistics
    _, fd, stage = _by_hand(net, x_bn, include_first=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    nsi, got_stage = record_batch(model, x, kind="fd", bn_mode="train")
    assert got_stage == stage and not model.training
    assert torch.allclose(nsi, fd.to(nsi.dtype), rtol=1e-10, atol=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    eval_nsi, _ = record_batch(model, x, kind="fd")  # running statistics: another trajectory
    assert not torch.allclose(eval_nsi, nsi, rtol=1e-3)
    with pytest.raises(ValueError, match=r"`bn_mode` must be .*did you mean 'train'"):
        record_batch(model, x, bn_mode="trian")


def test_record_batch_without_measurable_blocks():
    from odeattn.stiffness import record_batch

    torch.manual_seed(0)
    one = _Block(2, 2, gated=False).set_position(0, 0).double()  # first of its stage only
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    nsi, stage = record_batch(one, x, allow_empty=True)
    assert nsi.shape == (3, 0) and stage == []
    with pytest.raises(RuntimeError, match="no block was recorded"):
        record_batch(one, x)
