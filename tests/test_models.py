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

from odeattn.adaptors import ADAPTORS
from odeattn.compile._record import Recordable
from odeattn.models import ModelArgumentError, create_model, list_models
from odeattn.models.blocks import BasicBranch, BottleneckBranch

# Small variants and tiny inputs for every registered name: (kwargs, input shape).
_R = {"blocks": (1, 1, 1)}
_FIXED = {"method": "rk4", "step_size": 1.0}
_SMALL: dict[str, tuple[dict, tuple[int, ...]]] = {
    **{f"resnet{d}": (_R, (2, 3, 8, 8)) for d in (20, 32, 44, 56, 110, 83, 164, 245, 407, 1001)},
    "wrn52_4": ({**_R, "widths": (8, 8, 16)}, (2, 3, 8, 8)),
    "wrn28_10": ({**_R, "widths": (8, 8, 16)}, (2, 3, 8, 8)),
    **{
        f"resnet{d}": (
            {"blocks": (1, 1, 1, 1), "widths": (8, 8, 8, 8), "stem_width": 8, "num_classes": 7},
            (2, 3, 32, 32),
        )
        for d in (18, 34, 50)
    },
    "digits_resnet": ({}, (4, 1, 8, 8)),
    "digits_resnet_bottleneck": ({}, (4, 1, 8, 8)),
    "rkcnn": ({"stages": (2, 2, 3), "growth": (8, 8, 8)}, (2, 3, 8, 8)),
    # fixed-step solves keep the ODE nets cheap here; adaptive dopri5 is tested separately
    **{f"{k}_mnist": ({"width": 8, **_FIXED}, (2, 1, 12, 12)) for k in ("odenet", "rknet", "rknn")},
    "resnet_mnist": ({"width": 8, "blocks": 2}, (2, 1, 12, 12)),
    **{
        f"{k}_cifar": ({"growth": (4, 8, 4), **_FIXED}, (2, 3, 8, 8))
        for k in ("odenet", "rknet", "rknn")
    },
    "resnet_cifar": ({"growth": (4, 8, 4)}, (2, 3, 8, 8)),
    "digits_lm_resnet": ({}, (4, 1, 8, 8)),
    **{f"lm_resnet{d}": (_R, (2, 3, 8, 8)) for d in (20, 32, 44, 56, 110)},
}
# LM-ResNet's first block reads x_{-1} = x_0, so its k_0 has no effect (zero gradient) by design.
_INERT = {"stages.0.0.k"}


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
    tape = Tape(model)
    out = model(x)
    blocks = [m for m in model.modules() if isinstance(m, Recordable)]
    assert blocks and [r[0] for r in tape.rows] == blocks  # each block emits exactly once, in order
    n_cls = _SMALL[name][0].get("num_classes", 10)
    assert out.shape == (x.shape[0], n_cls)
    out.square().sum().backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if n not in _INERT and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
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
            self.bn1, self.conv1 = (
                nn.BatchNorm2d(cin),
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            )
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
    [
        ("resnet164", (2, 2, 2), True, False),
        ("resnet56", (2, 3, 2), False, False),
        ("resnet164", (2, 1, 2), True, True),
        ("resnet20", (1, 2, 1), False, True),
    ],
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


# ---------------------------------------------------------------- DIA sharing and placement


def _stage_tape(model, x):
    tape = Tape(model)
    model.eval()
    with torch.no_grad():
        model(x)
    return tape.rows


def test_dia_state_resets_at_first_block_of_each_stage():
    torch.manual_seed(0)
    model = create_model("resnet83", blocks=(3, 3, 3), adaptor="dia_lstm")
    x = torch.randn(2, 3, 16, 16)
    rows = _stage_tape(model, x)
    for s in (1, 2, 3):
        stage = getattr(model, f"layer{s}")
        shared = stage.adaptor
        assert shared.shared_blocks == 3
        mine = [r for r in rows if r[0].stage_id == s - 1]
        # replay the stage's (x_t, Φ) through the shared module from index 0: a reset state
        # reproduces every recorded Δt; starting without a reset (index 1 first) does not
        for i, (block, x_t, _, phi, dt) in enumerate(mine):
            assert block.block_index == i and block.first_in_stage == (i == 0)
            torch.testing.assert_close(shared(x_t, phi, index=i), dt, rtol=1e-6, atol=1e-7)
        fresh = shared(mine[0][1], mine[0][3], index=0)
        shared(mine[0][1], mine[0][3], index=0)
        carried = shared(mine[1][1], mine[1][3], index=1)
        assert torch.equal(fresh, mine[0][4]) and not torch.allclose(carried, fresh)


def test_dia_parameters_shared_once_per_stage():
    model = create_model("resnet164", blocks=(4, 4, 4), adaptor="dia_lstm")
    lstm = [n for n, _ in model.named_parameters() if ".adaptor." in n]
    assert lstm and all(
        n.startswith(("layer1.adaptor.", "layer2.adaptor.", "layer3.adaptor.")) for n in lstm
    )
    assert model.architecture()["sharing"] == "stage"
    per_block = create_model("resnet164", blocks=(4, 4, 4), adaptor="se", sharing="stage")
    n_se = sum(p.numel() for n, p in per_block.named_parameters() if "adaptor" in n)
    assert n_se == sum(2 * c * (c // 16) + c // 16 + c for c in (64, 128, 256))


@pytest.mark.parametrize(
    "placement",
    ["10|011|0000", "11|111|1011", [True, False, False, True, False, True, True, False, False]],
)
def test_placement_selects_exactly_those_blocks(placement):
    torch.manual_seed(0)
    model = create_model("digits_resnet", blocks=(2, 3, 4), adaptor="se", placement=placement)
    bits = [
        b in ("1", True)
        for b in (placement.replace("|", "") if isinstance(placement, str) else placement)
    ]
    rows = _stage_tape(model, torch.randn(2, 1, 8, 8))
    used = [torch.is_tensor(dt) for *_, dt in rows]
    assert used == bits and sum(used) == sum(bits)
    n_adapt = sum(1 for m in model.modules() if type(m).__name__ == "Adaptor")
    assert n_adapt == sum(bits)
    arch = model.architecture()
    assert (
        arch["placement"]
        == "".join("1" if b else "0" for b in bits)[:2]
        + "|"
        + "".join("1" if b else "0" for b in bits)[2:5]
        + "|"
        + "".join("1" if b else "0" for b in bits)[5:]
    )
    assert sum(p.numel() for p in create_model(**arch).parameters()) == sum(
        p.numel() for p in model.parameters()
    )


def test_placement_with_stage_sharing_resets_at_first_selected_block():
    torch.manual_seed(0)
    model = create_model(
        "digits_resnet", blocks=(3, 3, 3), adaptor="dia_lstm", placement="011|101|000"
    )
    assert model.layer1.adaptor.shared_blocks == 2 and model.layer2.adaptor.shared_blocks == 2
    assert not hasattr(model.layer3, "adaptor")
    rows = _stage_tape(model, torch.randn(2, 1, 8, 8))
    sel = [r for r in rows if torch.is_tensor(r[4]) and r[0].stage_id == 1]
    torch.testing.assert_close(model.layer2.adaptor(sel[0][1], sel[0][3], index=0), sel[0][4])


@pytest.mark.parametrize("bad", ["11|11", "111|111|11", "1101101", [True] * 5, "12|00|00"])
def test_placement_wrong_length_names_per_stage_counts(bad):
    with pytest.raises(ValueError, match=r"2\|2\|2|'0', '1'") as err:
        create_model("digits_resnet", blocks=(2, 2, 2), adaptor="se", placement=bad)
    assert "placement" in str(err.value)


def test_placement_needs_an_adaptor():
    with pytest.raises(ValueError, match="adaptor=None"):
        create_model("digits_resnet", blocks=(2, 2, 2), placement="11|11|11")


# ---------------------------------------------------------------- arguments and names


def test_unknown_keyword_suggests_the_closest():
    with pytest.raises(ModelArgumentError, match="did you mean 'num_classes'") as err:
        create_model("resnet164", num_clases=10)
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)
    with pytest.raises(ValueError, match="did you mean 'resnet164'"):
        create_model("resnet146")
    with pytest.raises(ValueError, match="family"):
        create_model("resnet20", family="rkcnn")
    with pytest.raises(ValueError, match="unknown method 'rk5'"):
        create_model("resnet20", method="rk5")
    with pytest.raises(ValueError, match="`blocks` must be 3 ints"):
        create_model("resnet20", blocks=(1, 1))
    with pytest.raises(ValueError, match="sharing"):
        create_model("resnet20", adaptor="se", sharing="layer")


def test_rkcnn_name_parsing():
    m = create_model("rkcnn-R-3_4_4", growth=(8, 8, 8))
    arch = m.architecture()
    assert (arch["name"], arch["variant"], arch["stages"], arch["sweeps"]) == (
        "rkcnn",
        "R",
        [3, 4, 4],
        1,
    )
    assert create_model("rkcnn_e_2_2_2", growth=(8, 8, 8)).architecture()["sweeps"] == 0
    with pytest.raises(ValueError, match="sets stages"):
        create_model("rkcnn-I-2_2_2", stages=(3, 3, 3))
    with pytest.raises(ValueError, match="RKCNN-E has no update sweeps"):
        create_model("rkcnn", variant="E", sweeps=1, growth=(8, 8, 8))


def test_method_per_stage_and_euler_transitions():
    model = create_model("resnet20", blocks=(2, 2, 2), method=["rk4", "heun", "euler"])
    assert model.architecture()["method"] == ["rk4", "heun", "euler"]
    names = [[b.tableau.name for b in getattr(model, f"layer{s}").blocks] for s in (1, 2, 3)]
    # stage 1 (16 -> 16) has no projection; stages 2, 3 start with a projection: Euler there
    assert names == [["rk4", "rk4"], ["euler", "heun"], ["euler", "euler"]]
    x = torch.randn(2, 3, 8, 8)
    rows = _stage_tape(model, x)
    blk = model.layer1.blocks[0]
    (f,) = blk.fields
    x_t = rows[0][1]
    k1 = f(x_t)
    k2 = f(x_t + 0.5 * k1)
    k3 = f(x_t + 0.5 * k2)
    k4 = f(x_t + k3)
    torch.testing.assert_close(rows[0][3], (k1 + 2 * k2 + 2 * k3 + k4) / 6, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- RKCNN and ODE blocks


def _published_rk_block(block, x, variant):
    """ZhuMai/RKCNN RK_block.forward, written out: dense init stages, then one update sweep."""
    fs = list(block.fields)
    s = len(fs) // 2 if variant != "E" else len(fs)
    ks, bottom = [], x
    for j in range(s):
        ks.append(fs[j](bottom))
        bottom = torch.cat([bottom, ks[-1]], 1)
    if variant != "E":
        old = list(ks)
        for j in range(s):
            src = ks if variant == "I" else old
            ks[j] = fs[s + j](torch.cat([x, *[src[i] for i in range(s) if i != j]], 1))
    return x + sum(ks)


@pytest.mark.parametrize("variant", ["E", "I", "R"])
def test_rkcnn_block_equals_published_loop(variant):
    torch.manual_seed(0)
    model = create_model("rkcnn", variant=variant, stages=(3, 2, 2), growth=(6, 4, 4)).eval()
    block = model.periods[0].blocks[0]
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(
            block(x), _published_rk_block(block, x, variant), rtol=0, atol=1e-6
        )
    if variant != "E":  # I and R differ once a stage sees an updated neighbour
        assert block.graph.variant == variant


def test_odenet_block_is_torchdiffeq_solve_and_emits_mean_slope():
    import torchdiffeq

    torch.manual_seed(0)
    model = create_model("odenet_mnist", width=8, tol=1e-2, adjoint=False).eval()
    block = model.feature
    h = torch.randn(2, 8, 3, 3)
    rows = _stage_tape(block, h)
    with torch.no_grad():
        want = torchdiffeq.odeint(block.func, h, torch.tensor([0.0, 1.0]), rtol=1e-2, atol=1e-2)[-1]
    ((_, x_t, y, phi, dt),) = rows
    assert torch.equal(y, want) and torch.equal(x_t, h) and dt == 1.0
    torch.testing.assert_close(phi, y - h)


def test_rknn_one_rk4_step_equals_compiled_rk4_step():
    from odeattn.compile import compile_step

    torch.manual_seed(0)
    model = create_model("rknn_mnist", width=8, solver="odeattn", method="rk4", step_size=1.0)
    f = model.feature.func
    h = torch.randn(2, 8, 3, 3)
    step = compile_step("rk4", lambda z: f(torch.zeros(()), z))
    with torch.no_grad():
        torch.testing.assert_close(model.feature(h), step(h), rtol=1e-5, atol=1e-6)
    # torchdiffeq's "rk4" is Kutta's 3/8 rule: the same step as odeattn's "rk38"
    td = create_model("rknn_mnist", width=8, method="rk4", step_size=1.0)
    td.load_state_dict(model.state_dict())
    rk38 = compile_step("rk38", lambda z: f(torch.zeros(()), z))
    with torch.no_grad():
        torch.testing.assert_close(td.feature(h), rk38(h), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("solver", ["torchdiffeq", "odeattn"])
def test_odenet_adjoint_gradients_approach_backprop(solver):
    # the adjoint differentiates the continuous flow, backprop the discrete solve: they agree up
    # to the discretisation (6.7 % at h = 0.05 here, GroupNorm on 3x3 maps is rough), not exactly
    torch.manual_seed(0)
    a = create_model(
        "odenet_mnist", width=8, method="rk4", step_size=0.05, adjoint=True, solver=solver
    )
    b = create_model("rknet_mnist", width=8, method="rk4", step_size=0.05, solver=solver)
    b.load_state_dict(a.state_dict())
    x, w = torch.randn(2, 1, 12, 12), torch.randn(2, 10)
    (a(x) * w).sum().backward(), (b(x) * w).sum().backward()
    ga = torch.cat([p.grad.flatten() for p in a.parameters()])
    gb = torch.cat([p.grad.flatten() for p in b.parameters()])
    assert (ga - gb).norm() / gb.norm() < 0.1
    assert not torch.equal(ga, gb)  # really the adjoint path


def test_adaptor_spec_round_trips_through_architecture():
    from odeattn.adaptors import AdaptorSpec

    spec = AdaptorSpec(inputs="pair", extractor="gap", processor="eca")
    model, x = small("digits_resnet", adaptor=spec, placement="011|101|110")
    arch = model.architecture()
    assert isinstance(arch["adaptor"], dict) and arch["adaptor"]["inputs"] == "pair"
    assert yaml.safe_load(yaml.safe_dump(arch)) == arch
    again = create_model(**yaml.safe_load(yaml.safe_dump(arch)))
    assert [n for n, _ in again.named_parameters()] == [n for n, _ in model.named_parameters()]
    again.load_state_dict(model.state_dict())
    model.eval(), again.eval()
    assert torch.equal(again(x), model(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits_resnet", "digits_resnet_bottleneck"])
def test_digits_nets_reach_95_percent(name):
    """The embedded default: ≥ 95 % test accuracy on sklearn's 8x8 digits (≈ 15-30 s on CPU)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(d.target)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    mu, sd = xtr.mean(), xtr.std()
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    torch.manual_seed(0)
    model = create_model(name)
    opt = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True
    )
    epochs, bs = 15, 64
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=epochs * -(-len(xtr) // bs))
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), bs):
            idx = perm[i : i + bs]
            loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    assert acc >= 0.95, acc


@pytest.mark.parametrize(
    "adaptor",
    ["dia_lstm", {"preset": "dia_lstm"}, {"preset": "dia_lstm", "reduction": 8}],
    ids=["name", "preset-dict", "preset-dict-override"],
)
def test_dia_preset_is_one_shared_adaptor_per_stage_in_every_form(adaptor):
    # Regression: the YAML/dict form {"preset": "dia_lstm"} resolved sharing to "block" and built
    # one DIA-LSTM per block. The preset's sharing holds in every form.
    model = create_model("digits_resnet", blocks=(3, 3, 3), adaptor=adaptor)
    for stage in (model.layer1, model.layer2, model.layer3):
        assert stage.adaptor.stage_shared and stage.adaptor.shared_blocks == 3
        owned = [m for m in stage.modules() if type(m).__name__ == "Adaptor"]
        assert len(owned) == 1  # one module serves the stage, not one per block
    assert model.architecture()["sharing"] in (None, "stage")


def test_dia_preset_sharing_can_be_overridden_per_block():
    model = create_model("digits_resnet", blocks=(3, 3, 3), adaptor="dia_lstm", sharing="block")
    owned = [m for m in model.layer1.modules() if type(m).__name__ == "Adaptor"]
    assert len(owned) == 3 and not any(a.stage_shared for a in owned)


def test_create_adaptor_does_not_silently_drop_stage_sharing():
    from odeattn.adaptors import create_adaptor

    with pytest.raises(ValueError, match="shared_blocks=n"):
        create_adaptor("dia_lstm", 16)
    assert create_adaptor("dia_lstm", 16, shared_blocks=3).stage_shared
    assert not create_adaptor("dia_lstm", 16, sharing="block").stage_shared


def test_structured_placement_builds_what_the_string_builds():
    from odeattn.models import split_per_stage

    assert split_per_stage([1, 0, 0, 1, 1], (2, 3)) == [[1, 0], [0, 1, 1]]
    nested = [(True, False), (False, True, True), (True, True)]
    a = create_model("digits_resnet", blocks=(2, 3, 2), adaptor="se", placement=nested)
    b = create_model("digits_resnet", blocks=(2, 3, 2), adaptor="se", placement="10|011|11")
    assert a.architecture() == b.architecture()
    assert a.architecture()["placement"] == "10|011|11"
    with pytest.raises(ValueError, match="group lengths 2\\|2\\|2"):
        create_model("digits_resnet", blocks=(2, 3, 2), adaptor="se", placement=[[1, 0]] * 3)


def test_installed_torchdiffeq_method_list_is_readable():
    # the one private torchdiffeq attribute odeattn reads (odenet.torchdiffeq_methods)
    from odeattn.models.odenet import torchdiffeq_methods

    names = torchdiffeq_methods()
    assert {"dopri5", "euler", "rk4", "midpoint"} <= set(names), names
