"""Zero-cost proxies: each equals a hand computation on a tiny network and leaves the model as found."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from odeattn.proxies import PROXIES, grad_norm, jacob_cov, naswot, score, snip, synflow


def _linear(w: list[list[float]], b: list[float] | None = None) -> nn.Linear:
    lin = nn.Linear(len(w[0]), len(w), bias=b is not None).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(w, dtype=torch.float64))
        if b is not None:
            lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
    return lin


class _TwoRelu(nn.Module):
    """2 -> 3 (nn.ReLU in place) -> 2 (functional ``.relu()``, as odeattn's blocks use) -> 2."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = _linear([[1, 0], [0, 1], [1, 1]], [0, 0, 0])
        self.act = nn.ReLU(inplace=True)
        self.fc2 = _linear([[1, -1, 0], [0, 1, -1]], [0, 0])
        self.fc3 = _linear([[1, 0], [0, 1]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 2) -> (B, 2)
        return self.fc3(self.fc2(self.act(self.fc1(x))).relu())


def test_naswot_equals_kernel_of_explicit_codes() -> None:
    x = torch.tensor([[1.0, -1.0], [-1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)
    # fc1(x) = [1,-1,0], [-1,2,1], [2,1,3]; relu -> h = [1,0,0], [0,2,1], [2,1,3]
    # fc2(h) = [1,0], [-2,1], [1,-2]; a unit at exactly 0 is off (1[· > 0])
    codes = np.array([[1, 0, 0, 1, 0], [0, 1, 1, 0, 1], [1, 1, 1, 1, 0]])
    n_units = codes.shape[1]
    k = np.array([[n_units - np.sum(ci != cj) for cj in codes] for ci in codes], dtype=float)
    assert k.tolist() == [[5, 0, 3], [0, 5, 2], [3, 2, 5]]  # det = 5·21 − 0 + 3·(−15) = 60
    assert naswot(_TwoRelu(), x) == pytest.approx(math.log(60.0), rel=1e-12)


class _LinBnNet(nn.Module):
    """3 -> 4 -> BatchNorm1d -> ReLU -> 2 (float64)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3) -> (B, 2)
        return self.fc2(self.bn(self.fc1(x)).relu())


def test_synflow_closed_form_with_batchnorm_as_identity() -> None:
    torch.manual_seed(0)
    net = _LinBnNet()
    with torch.no_grad():  # BN that would matter if it were applied
        net.bn.weight.fill_(-5.0), net.bn.running_mean.fill_(3.0), net.bn.running_var.fill_(0.1)
    w1, b1 = net.fc1.weight.detach().abs().numpy(), net.fc1.bias.detach().abs().numpy()
    w2 = net.fc2.weight.detach().abs().numpy()
    # all |θ| ≥ 0 and input 1: the ReLU passes everything, R = 1ᵀ|W2|(|W1|1 + |b1|) + 1ᵀ|b2|
    h = w1.sum(1) + b1  # (4,) = ∂R/∂W2[k, j] for every k
    s = w2.sum(0)  # (4,) = ∂R/∂W1[j, i] for every i
    expected = float((w2 * h[None, :]).sum() + (w1 * s[:, None]).sum())
    x = torch.randn(5, 3, dtype=torch.float64)
    assert synflow(net, x) == pytest.approx(expected, rel=1e-12)


def _manual_ce_grads(net: _LinBnNet, x: torch.Tensor, y: torch.Tensor) -> list[np.ndarray]:
    """∂L/∂W1, ∂L/∂W2 of the mean cross-entropy by hand-written backprop (BN in train mode)."""
    xn, w1, b1 = x.numpy(), net.fc1.weight.detach().numpy(), net.fc1.bias.detach().numpy()
    g, beta = net.bn.weight.detach().numpy(), net.bn.bias.detach().numpy()
    w2, b2 = net.fc2.weight.detach().numpy(), net.fc2.bias.detach().numpy()
    n = xn.shape[0]
    a = xn @ w1.T + b1  # (B, 4)
    mu, var = a.mean(0), a.var(0)  # biased batch variance
    xhat = (a - mu) / np.sqrt(var + net.bn.eps)
    z = xhat * g + beta
    hid = np.maximum(z, 0)
    logits = hid @ w2.T + b2  # (B, 2)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d_logits = (p - np.eye(2)[y.numpy()]) / n  # (B, 2)
    d_z = (d_logits @ w2) * (z > 0)
    d_xhat = d_z * g
    d_a = (d_xhat - d_xhat.mean(0) - xhat * (d_xhat * xhat).mean(0)) / np.sqrt(var + net.bn.eps)
    return [d_a.T @ xn, d_logits.T @ hid]


def test_grad_norm_and_snip_equal_manual_backprop() -> None:
    torch.manual_seed(1)
    net = _LinBnNet()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1, 0])
    g1, g2 = _manual_ce_grads(net, x, y)
    w1, w2 = net.fc1.weight.detach().numpy(), net.fc2.weight.detach().numpy()
    assert grad_norm(net, x, y) == pytest.approx(np.linalg.norm(g1) + np.linalg.norm(g2), rel=1e-10)
    assert snip(net, x, y) == pytest.approx(
        np.abs(w1 * g1).sum() + np.abs(w2 * g2).sum(), rel=1e-10
    )


def test_jacob_cov_equals_explicit_jacobian() -> None:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4)).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    w1, b1 = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    w2 = net[2].weight.detach().numpy()
    a = x.numpy() @ w1.T + b1  # (B, 5)
    jac = (w2.sum(0)[None, :] * (1 - np.tanh(a) ** 2)) @ w1  # (B, 3): ∂(Σ_k out_ik)/∂x_i
    lam = np.linalg.eigvalsh(np.corrcoef(jac))
    expected = -np.sum(np.log(lam + 1e-5) + 1 / (lam + 1e-5))
    assert jacob_cov(net, x) == pytest.approx(expected, rel=1e-9)


def test_params_counts_trainable_once() -> None:
    lin = nn.Linear(3, 4)  # 12 + 4
    net = nn.Sequential(lin, nn.ReLU(), lin, nn.Linear(4, 2))  # shared lin once; 8 + 2
    net[3].bias.requires_grad_(False)
    assert score("params", net, torch.randn(2, 3)) == 16 + 8 == 24.0


class _Probe(nn.Module):
    """Conv + BN + dropout + a shared Linear; (B, 1, 4, 4) -> (B, 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2)
        self.drop, self.fc = nn.Dropout(0.5), nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.bn(self.conv(x)).relu().flatten(1)))


def _snapshot(net: nn.Module) -> tuple:
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    grads = {k: None if p.grad is None else p.grad.clone() for k, p in net.named_parameters()}
    modes = {k: m.training for k, m in net.named_modules()}
    return state, grads, modes, torch.get_rng_state()


@pytest.mark.parametrize("name", sorted(PROXIES))
@pytest.mark.parametrize("training", [True, False])
def test_proxy_leaves_model_as_found(name: str, training: bool) -> None:
    torch.manual_seed(3)
    net = _Probe().train(training)
    net.bn.train(not training)  # mixed modes must come back per submodule
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 3, (8,))
    net(x).sum().backward()  # some grads set ...
    net.conv.bias.grad = None  # ... and one None
    before = _snapshot(net)
    assert before[0]["bn.num_batches_tracked"].item() == int(not training)
    value = PROXIES[name](net, x, y)
    after = _snapshot(net)
    assert type(value) is float and math.isfinite(value)
    for key in before[0]:
        assert torch.equal(before[0][key], after[0][key]), key
    for key, g in before[1].items():
        assert (g is None) == (after[1][key] is None), key
        assert g is None or torch.equal(g, after[1][key]), key
    assert before[2] == after[2]
    assert torch.equal(before[3], after[3])  # the caller's RNG stream is not consumed
    assert PROXIES[name](net, x, y) == value  # hence deterministic even with dropout
    assert score(name, net, x, y) == value
    assert PROXIES[name].direction == "maximize"


def test_naswot_codes_relu6_like_relu() -> None:
    torch.manual_seed(5)
    lin, x = nn.Linear(3, 6), torch.randn(5, 3)  # pre-activations well below 6
    assert naswot(nn.Sequential(lin, nn.ReLU6()), x) == naswot(nn.Sequential(lin, nn.ReLU()), x)
    assert naswot(nn.Sequential(lin, nn.ReLU()), x) > 0


@pytest.mark.parametrize("name", ["digits_resnet", "digits_resnet_bottleneck"])
def test_real_odeattn_model_gives_finite_scores(name: str) -> None:
    from odeattn.models import create_model

    torch.manual_seed(4)
    model = create_model(name, num_classes=10, in_channels=1)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    values = {name: score(name, model, x, y) for name in PROXIES}
    assert all(math.isfinite(v) for v in values.values()), values
    assert values["naswot"] > 0 and values["synflow"] > 0 and values["grad_norm"] > 0
    assert values["params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "x", "y", "match"),
    [
        ("naswot", torch.randn(2), None, "batch first"),
        ("jacob_cov", torch.randn(1, 2), None, "B >= 2"),
        ("synflow", torch.ones(3, 2, dtype=torch.long), None, "float batch"),
        ("grad_norm", torch.randn(3, 2), torch.tensor([0, 1]), r"shape \(B,\)"),
        ("snip", torch.randn(3, 2), torch.tensor([0.0, 1.0, 1.0]), "integer"),
        ("snip", torch.randn(3, 2), torch.tensor([0, 1, 2]), r"labels must lie in \[0, 2\)"),
        ("snip", torch.randn(3, 2), None, "needs labels"),
        ("snipp", torch.randn(3, 2), None, "did you mean 'snip'"),
    ],
)
def test_bad_input_is_a_clear_value_error(name: str, x: torch.Tensor, y, match: str) -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match=match):
        score(name, net, x, y)


def test_naswot_needs_relu_units_and_a_batch_major_output() -> None:
    with pytest.raises(ValueError, match="no ReLU"):
        naswot(nn.Sequential(nn.Linear(2, 3), nn.Tanh()), torch.randn(4, 2))
    with pytest.raises(ValueError, match="missing its batch dimension"):
        grad_norm(
            nn.Sequential(nn.Linear(2, 3), nn.Flatten(0)),
            torch.randn(4, 2),
            torch.zeros(4, dtype=torch.long),
        )


class _ModeSpy(nn.Linear):
    seen: ClassVar[list[bool]] = []  # class attribute: shared with synflow's deep copy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.training)
        return super().forward(x).relu()


@pytest.mark.parametrize(
    ("name", "training"),
    [
        ("naswot", True),
        ("grad_norm", True),
        ("snip", True),
        ("jacob_cov", True),
        ("synflow", False),
    ],
)
def test_proxy_runs_the_model_in_its_documented_mode(name: str, training: bool) -> None:
    spy = _ModeSpy(2, 3)
    _ModeSpy.seen = []
    net = nn.Sequential(spy, nn.Linear(3, 2)).train(not training)
    PROXIES[name](net, torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))
    assert spy.seen == [training] and net.training is not training
