"""Models: every MODELS entry works and rebuilds; compiled ResNets equal hand-written ones.

Values, not smoke: hand-written pre-activation ResNets (bearpaw ``preresnet.py``) with and without
a hand-written SE block, the published RKCNN block loop, torchdiffeq's ``odeint`` on the same f,
and the recorder seam (y = x_t + Δt ⊙ Φ checked at every block).
"""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

from odeattn._record import Recordable
from odeattn.adaptors import ADAPTORS
from odeattn.models import create_model, list_models
from odeattn.models.blocks import BasicBranch, BottleneckBranch

# Small variants and tiny inputs for every registered name: (kwargs, input shape).
_R = {"blocks": (1, 1, 1)}
_FIXED = {"method": "rk4", "step_size": 1.0}
_SMALL: dict[str, tuple[dict, tuple[int, ...]]] = {
    **{f"resnet{d}": (_R, (2, 3, 8, 8)) for d in (20, 32, 44, 56, 110, 83, 164, 245, 407, 1001)},
    "wrn52_4": ({**_R, "widths": (8, 8, 16)}, (2, 3, 8, 8)),
    "wrn28_10": ({**_R, "widths": (8, 8, 16)}, (2, 3, 8, 8)),
    **{f"resnet{d}": ({"blocks": (1, 1, 1, 1), "widths": (8, 8, 8, 8), "stem_width": 8,
                       "num_classes": 7}, (2, 3, 32, 32)) for d in (18, 34, 50)},
    "digits_resnet": ({}, (4, 1, 8, 8)),
    "digits_resnet_bottleneck": ({}, (4, 1, 8, 8)),
    "rkcnn": ({"stages": (2, 2, 3), "growth": (8, 8, 8)}, (2, 3, 8, 8)),
    # fixed-step solves keep the ODE nets cheap here; adaptive dopri5 is tested separately
    **{f"{k}_mnist": ({"width": 8, **_FIXED}, (2, 1, 12, 12)) for k in ("odenet", "rknet", "rknn")},
    "resnet_mnist": ({"width": 8, "blocks": 2}, (2, 1, 12, 12)),
    **{f"{k}_cifar": ({"growth": (4, 8, 4), **_FIXED}, (2, 3, 8, 8)) for k in ("odenet", "rknet", "rknn")},
    "resnet_cifar": ({"growth": (4, 8, 4)}, (2, 3, 8, 8)),
}


def small(name: str, **extra) -> tuple[nn.Module, torch.Tensor]:
    kw, shape = _SMALL[name]
    torch.manual_seed(0)
    model = create_model(name, **{**kw, **extra})
    return model, torch.randn(*shape)


class Tape:
    """A recorder for the seam in odeattn/_record.py: keeps what every block emits."""

    def __init__(self, model: nn.Module):
        self.rows: list[tuple] = []
        for m in model.modules():
            if isinstance(m, Recordable):
                m._recorder = self

    def emit(self, block, x_t, y, phi, dt):
        self.rows.append((block, x_t.detach(), y.detach(), phi.detach(), dt))


def test_every_model_has_a_small_variant():
    assert sorted(_SMALL) == list_models()


@pytest.mark.parametrize("name", sorted(_SMALL))
def test_forward_backward_shape_and_grads(name):
    model, x = small(name)
    out = model(x)
    n_cls = _SMALL[name][0].get("num_classes", 10)
    assert out.shape == (x.shape[0], n_cls)
    out.square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"


@pytest.mark.parametrize("name", sorted(_SMALL))
def test_architecture_rebuilds_same_network(name):
    model, x = small(name)
    arch = model.architecture()
    assert yaml.safe_load(yaml.safe_dump(arch)) == arch  # plain, YAML-serialisable
    rebuilt = create_model(**arch)
    assert [n for n, _ in rebuilt.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert rebuilt.architecture() == arch
    rebuilt.load_state_dict(model.state_dict())  # strict: same keys and shapes
    model.eval(), rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(_SMALL))
def test_same_seed_same_output(name):
    (a, x), (b, _) = small(name), small(name)
    torch.manual_seed(1)
    ya = a(x)
    torch.manual_seed(1)
    yb = b(x)
    assert torch.equal(ya, yb)
    c = create_model(name, **_SMALL[name][0])  # another seed: different weights
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_state_dict_roundtrip_through_file(tmp_path):
    model, x = small("digits_resnet", adaptor="dia_lstm")
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    other = create_model(**model.architecture())
    other.load_state_dict(torch.load(path, weights_only=True))
    model.eval(), other.eval()
    assert torch.equal(model(x), other(x))


_PRESETS = sorted(k for k in ADAPTORS if k != "none")


@pytest.mark.parametrize("adaptor", _PRESETS)
def test_adaptor_presets_give_steps_in_unit_interval(adaptor):
    # digits widths are 16/32/64: DIA-light's r = 20 and SGE's 64 groups do not fit them
    kw = {"dia_light": {"reduction": 4}, "sge": {"groups": 8}}.get(adaptor, {})
    model, x = small("digits_resnet", adaptor=adaptor, adaptor_kw=kw, blocks=(2, 1, 2))
    tape = Tape(model)
    out = model(x)
    assert len(tape.rows) == 5
    for _, x_t, y, phi, dt in tape.rows:
        assert torch.is_tensor(dt), "every block carries the adaptor"
        assert dt.min() > 0 and dt.max() < 1
        torch.testing.assert_close(y, x_t + dt.detach() * phi, rtol=1e-6, atol=1e-6)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_adaptor_none_preset_and_placement_none():
    model, x = small("digits_resnet", adaptor="none")
    tape = Tape(model)
    model(x)
    assert all(dt == 1.0 for *_, dt in tape.rows)


# ---------------------------------------------------------------- hand-written references


class RefSE(nn.Module):
    def __init__(self, c: int, r: int = 16):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(c, c // r), nn.Linear(c // r, c)

    def forward(self, u):
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(u.mean((2, 3))))))[:, :, None, None]


class RefBlock(nn.Module):
    """bearpaw preresnet Bottleneck/BasicBlock: out = branch(x) [* se] + shortcut(x)."""

    def __init__(self, cin, planes, stride, bottleneck, se):
        super().__init__()
        self.bottleneck = bottleneck
        cout = planes * 4 if bottleneck else planes
        if bottleneck:
            self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, planes, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn3, self.conv3 = nn.BatchNorm2d(planes), nn.Conv2d(planes, cout, 1, bias=False)
        else:
            self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.se = RefSE(cout) if se else None
        proj = stride != 1 or cin != cout
        self.downsample = nn.Conv2d(cin, cout, 1, stride, bias=False) if proj else None

    def forward(self, x):
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        if self.bottleneck:
            out = self.conv3(torch.relu(self.bn3(out)))
        if self.se is not None:
            out = out * self.se(out)
        residual = x if self.downsample is None else self.downsample(x)
        return out + residual


class RefPreResNet(nn.Module):
    def __init__(self, blocks, widths, bottleneck, se, num_classes=10, cin=3):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, 16, 3, padding=1, bias=False)
        layers, c = [], 16
        for s, (n, w) in enumerate(zip(blocks, widths)):
            for i in range(n):
                layers.append(RefBlock(c, w, 2 if (s > 0 and i == 0) else 1, bottleneck, se))
                c = w * 4 if bottleneck else w
        self.layers = nn.Sequential(*layers)
        self.bn, self.fc = nn.BatchNorm2d(c), nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.layers(self.conv1(x))
        return self.fc(torch.relu(self.bn(x)).mean((2, 3)))


def _copy_into_ref(model, ref):
    """Copy odeattn's weights into the reference by locating modules structurally."""
    steps = [b for i in (1, 2, 3) for b in getattr(model, f"layer{i}").blocks]
    ref.conv1.load_state_dict(model.stem[0].state_dict())
    for step, rb in zip(steps, ref.layers, strict=True):
        (branch,) = step.fields
        assert isinstance(branch, (BasicBranch, BottleneckBranch))
        for name in ("bn1", "conv1", "bn2", "conv2", "bn3", "conv3"):
            if hasattr(rb, name):
                getattr(rb, name).load_state_dict(getattr(branch, name).state_dict())
        if rb.downsample is not None:
            rb.downsample.load_state_dict(step.shortcut.state_dict())
        if rb.se is not None:
            for p_ref, p in zip(rb.se.parameters(), step.step.parameters(), strict=True):
                p_ref.data.copy_(p.data.reshape(p_ref.shape))
    ref.bn.load_state_dict(model.head.bn.state_dict())
    ref.fc.load_state_dict(model.head.fc.state_dict())


@pytest.mark.parametrize(
    ("name", "blocks", "bottleneck", "se"),
    [("resnet164", (2, 2, 2), True, False), ("resnet56", (2, 3, 2), False, False),
     ("resnet164", (2, 1, 2), True, True), ("resnet20", (1, 2, 1), False, True)],
)
def test_compiled_resnet_equals_hand_written_preact(name, blocks, bottleneck, se):
    torch.manual_seed(0)
    model = create_model(name, blocks=blocks, adaptor="se" if se else None).double()
    ref = RefPreResNet(blocks, (16, 32, 64), bottleneck, se).double()
    _copy_into_ref(model, ref)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in model.parameters())
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    for mode in ("train", "eval"):
        model.train(mode == "train"), ref.train(mode == "train")
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=1e-6)
