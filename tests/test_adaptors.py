"""Step-size adaptors: conformance of every ADAPTORS entry, published parameter counts, hand-written
equivalents (SE, SRM, CBAM, SGE, StepNet, DIA-LSTM), DIA sharing semantics, spec validation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from odeattn.adaptors import (
    ADAPTORS,
    SPEC_CHOICES,
    Adaptor,
    AdaptorSpec,
    IEBatchNorm2d,
    bind,
    create_adaptor,
    dct_filters,
    default_sharing,
    eca_kernel_size,
)

C, B, H = 64, 4, 6
R164 = (64, 128, 256)  # ResNet-164 stage widths, 18 bottleneck blocks each
BASE = {"c10": 1_704_154, "c100": 1_727_284}


def count(m: nn.Module | None) -> int:
    return 0 if m is None else sum(p.numel() for p in m.parameters())


def build(name: str, channels: int = C, shared: int | None = None, seed: int = 0, **kw):
    torch.manual_seed(seed)
    if shared is None and default_sharing(name) == "stage":
        kw = {"sharing": "block", **kw}  # a stage-shared preset used per block says so
    return ADAPTORS[name](channels, shared_blocks=shared, **kw)


def inputs(seed: int = 1, channels: int = C, h: int = H):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, channels, h, h, generator=g)
    phi = torch.randn(B, channels, h, h, generator=g)
    return x, phi


def run(adaptor, x, phi, blocks: int = 1):
    """Δt for `blocks` consecutive blocks (index 0..blocks-1) of one stage."""
    return [adaptor(x + i * 0.1, phi * (1 + 0.1 * i), index=i) for i in range(blocks)]


NAMES = sorted(n for n in ADAPTORS if n != "none")


# ---------------------------------------------------------------- conformance (every entry)
def test_none_is_unit_step():
    assert create_adaptor("none", C) is None
    assert create_adaptor(None, C) is None
    assert ADAPTORS["none"](C) is None
    assert bind(None, 3) is None


@pytest.mark.parametrize("shared", [None, 3])
@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_range_and_grads(name, shared):
    a = build(name, shared=shared)
    with torch.no_grad():  # random, non-degenerate parameters: checks connectivity, not init
        for p in a.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, phi = inputs()
    x.requires_grad_(True)
    phi.requires_grad_(True)
    dts = run(a, x, phi, blocks=shared or 1)
    for dt in dts:
        assert dt.shape[0] == B and dt.dim() == 4
        assert torch.broadcast_shapes(dt.shape, x.shape) == x.shape
        assert bool(((dt > 0) & (dt < 1)).all()), (float(dt.min()), float(dt.max()))
        assert (dt.shape[2:] == (H, H)) == a.spec.is_spatial
    sum((dt * phi).sum() for dt in dts).backward()
    for pname, p in a.named_parameters():
        if shared is None and pname.startswith(("process.hh.0.weight", "process.hh_weight")):
            continue  # weights on h_{t-1} = 0 get no gradient when only index 0 runs
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    used = {"phi": (phi,), "x": (x,), "next": (x, phi), "diff": (phi,), "pair": (x, phi)}
    for t in used[a.spec.inputs]:
        assert t.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_and_seed(name):
    x, phi = inputs()
    shared = 2 if default_sharing(name) == "stage" else None
    a = build(name, shared=shared, seed=3)
    run(a, x, phi, blocks=shared or 1)  # moves BN running statistics
    a.eval()
    b = build(name, shared=shared, seed=4).eval()
    b.load_state_dict(a.state_dict())
    for da, db in zip(run(a, x, phi, shared or 1), run(b, x, phi, shared or 1)):
        torch.testing.assert_close(da, db, rtol=0, atol=0)
    c, d = build(name, seed=7), build(name, seed=7)
    torch.testing.assert_close(c(x, phi), d(x, phi), rtol=0, atol=0)


# ---------------------------------------------------------------- parameter counts (ResNet-164)
def _per_block(name, c):
    r = c // 16
    return {
        "se": 2 * c * r + r + c,
        "eca": eca_kernel_size(c),
        "cbam": 2 * c * r + r + c + 2 * 49 + 2,
        "srm": 4 * c,
        "fca": 2 * c * r,
        "spa": 21 * c * r + r * c,
        "sge": 2 * 64,
        "iebn": 2 * c,
        "stepnet": 2 * c + 4 * c,
        "stepnet_a": 2 * c + 2 * c,
        "stepnet_b": 2 * c * r + r + r * c + c,
        "stepnet_c": 2 * c * r + r + c,
        "stepnet_d": 2 * c + 4 * c,
    }[name]


def _dia(c, r=4, light=False):
    cell = c * (c // r) + c // r + (c // r) * 4 * c + 4 * c  # small cell, biases on
    return cell + (8 * c if light else cell)


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("dia")])
def test_per_block_counts_match_formulas(name):
    for c in R164:
        assert count(create_adaptor(name, c)) == _per_block(name, c), c


def test_dia_counts_independent_of_depth():
    for c in R164:
        for n in (9, 18, 27, 45):  # ResNet-83/164/245/407 blocks per stage
            assert count(create_adaptor("dia_lstm", c, shared_blocks=n)) == _dia(c)
            assert count(create_adaptor("dia_light", c, shared_blocks=n)) == _dia(c, 20, True)
    assert sum(_dia(c) for c in R164) == 218_848  # seed_methods.md §1.1
    assert sum(_dia(c, 16) for c in R164) == 57_400


def _total(name, table="c10", **kw):
    if name.startswith("dia"):
        extra = sum(count(create_adaptor(name, c, shared_blocks=18, **kw)) for c in R164)
    else:
        extra = sum(18 * count(create_adaptor(name, c, **kw)) for c in R164)
    return BASE[table] + extra


# (preset, table, kwargs, published #P(M), exact to the table's rounding?)
TABLES = [
    ("se", "c10", {}, 1.91, True),
    ("se", "c100", {}, 1.93, True),
    ("eca", "c10", {}, 1.70, True),
    ("eca", "c100", {}, 1.73, True),
    ("srm", "c10", {}, 1.74, True),
    ("srm", "c100", {}, 1.76, True),
    ("cbam", "c10", {}, 1.92, False),
    ("cbam", "c100", {}, 1.93, True),
    ("fca", "c10", {"bias": True}, 1.91, True),
    ("fca", "c100", {"bias": True}, 1.93, True),
    ("stepnet", "c10", {}, 1.75, True),
    ("stepnet", "c100", {}, 1.77, False),
    ("dia_lstm", "c10", {}, 1.92, True),
    ("dia_lstm", "c100", {}, 1.95, True),
    ("dia_lstm", "c100", {"reduction": 16}, 1.78, True),
    ("dia_light", "c10", {}, 1.73, True),
    ("dia_light", "c100", {}, 1.75, True),
]


@pytest.mark.parametrize(("name", "table", "kw", "published", "exact"), TABLES)
def test_resnet164_totals_match_paper_tables(name, table, kw, published, exact):
    total = _total(name, table, **kw) / 1e6
    if exact:
        assert round(total, 2) == published
    assert abs(total - published) / published < 0.005


def test_table_deltas():
    assert _total("se") - BASE["c10"] == 202_104
    assert _total("srm") - BASE["c10"] == 32_256
    assert _total("stepnet") - BASE["c10"] == 48_384  # ≈ 0.05M (StepNet: 1.70M → 1.75M)
    assert _total("eca") - BASE["c10"] == 18 * (3 + 5 + 5)


# ---------------------------------------------------------------- hand-written equivalents
class HandSE(nn.Module):
    def __init__(self, c, r=16):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(c, c // r), nn.ReLU(), nn.Linear(c // r, c), nn.Sigmoid())

    def forward(self, y):  # y: residual branch output
        return y * self.fc(y.mean((2, 3)))[:, :, None, None]


def test_se_equals_hand_written_block():
    a, ref = create_adaptor("se", C), HandSE(C)
    with torch.no_grad():
        a.process.fc1.weight.copy_(ref.fc[0].weight)
        a.process.fc1.bias.copy_(ref.fc[0].bias)
        a.process.fc2.weight.copy_(ref.fc[2].weight)
        a.process.fc2.bias.copy_(ref.fc[2].bias)
    x, phi = inputs()
    torch.testing.assert_close(x + a(x, phi) * phi, x + ref(phi), rtol=0, atol=1e-6)


def test_srm_equals_formula():
    a = create_adaptor("srm", C)
    with torch.no_grad():
        a.process.weight.normal_()
    x, phi = inputs()
    flat = phi.flatten(2)
    mean, std = flat.mean(-1), (flat.var(-1, unbiased=True) + 1e-5).sqrt()
    z = mean * a.process.weight[:, 0] + std * a.process.weight[:, 1]
    zhat = (z - z.mean(0)) / (z.var(0, unbiased=False) + 1e-5).sqrt()
    torch.testing.assert_close(a(x, phi), torch.sigmoid(zhat)[:, :, None, None], atol=1e-5, rtol=0)


def test_cbam_equals_hand_written():
    a = create_adaptor("cbam", C)
    assert a.process.fc1.bias.abs().sum() == 0 and a.then.process.norms[0].weight.item() == 0
    with torch.no_grad():
        a.then.process.norms[0].weight.fill_(0.7)
    a.eval()  # BN with running statistics (0, 1)
    x, phi = inputs()
    mlp = lambda v: a.process.fc2(F.relu(a.process.fc1(v)))  # noqa: E731
    mc = torch.sigmoid(mlp(phi.mean((2, 3))) + mlp(phi.amax((2, 3))))[:, :, None, None]
    y = phi * mc
    pooled = torch.cat((y.amax(1, keepdim=True), y.mean(1, keepdim=True)), 1)
    bn = a.then.process.norms[0]
    s = F.conv2d(pooled, a.then.process.conv.weight, padding=3) / math.sqrt(1 + bn.eps) * 0.7
    torch.testing.assert_close(a(x, phi), mc * torch.sigmoid(s), atol=1e-6, rtol=0)


def test_sge_equals_hand_written():
    a = create_adaptor("sge", C, groups=16)
    with torch.no_grad():
        a.process.weight.normal_()
        a.process.bias.normal_()
    x, phi = inputs()
    out = torch.empty_like(phi)
    for g in range(16):
        xs = phi[:, 4 * g : 4 * g + 4]  # (B, 4, H, W)
        t = (xs * xs.mean((2, 3), keepdim=True)).sum(1).flatten(1)
        t = (t - t.mean(1, keepdim=True)) / (t.std(1, keepdim=True) + 1e-5)
        t = t * a.process.weight[0, g, 0, 0] + a.process.bias[0, g, 0, 0]
        out[:, 4 * g : 4 * g + 4] = torch.sigmoid(t).view(B, 1, H, H)
    torch.testing.assert_close(a(x, phi), out, atol=1e-6, rtol=0)


def test_stepnet_equals_grouped_conv_gap_iebn_sigmoid():
    """Fig. 4b literally: grouped conv over the interleaved pair → GAP → IEBN → σ."""
    a = create_adaptor("stepnet", C)
    conv = nn.Conv2d(2 * C, C, 1, groups=C, bias=False)
    iebn = IEBatchNorm2d(C)
    with torch.no_grad():
        conv.weight.copy_(a.process.weight.view(C, 2, 1, 1))
        for p in iebn.parameters():
            p.normal_()
        a.process.norms[0].load_state_dict(iebn.state_dict())
    x, phi = inputs()
    pair = torch.stack((x + phi, x), dim=2).flatten(1, 2)  # (B, 2C, H, W): x_{t+1}[c], x_t[c]
    ref = torch.sigmoid(iebn(conv(pair).mean((2, 3), keepdim=True)))
    torch.testing.assert_close(a(x, phi), ref, atol=1e-6, rtol=1e-5)
    assert a.process.weight.std().item() == pytest.approx(math.sqrt(2 / C), rel=0.25)


def test_iebn_formula_and_init():
    n = IEBatchNorm2d(C)
    assert count(n) == 4 * C and n.ie_bias.eq(-1).all() and n.ie_weight.eq(0).all()
    with torch.no_grad():
        for p in n.parameters():
            p.normal_()
    x, _ = inputs()
    xhat = (x - x.mean((0, 2, 3), keepdim=True)) / (
        x.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5
    ).sqrt()
    gate = torch.sigmoid(x.mean((2, 3)) * n.ie_weight + n.ie_bias) * n.gamma
    ref = xhat * gate[:, :, None, None] + n.beta[:, None, None]
    torch.testing.assert_close(n(x), ref, atol=1e-5, rtol=0)


def test_eca_kernel_size_formula():
    assert [eca_kernel_size(c) for c in (16, 64, 128, 256, 512, 1024, 2048)] == [
        3,
        3,
        5,
        5,
        5,
        5,
        7,
    ]
    for c, k in zip(R164, (3, 5, 5)):
        assert create_adaptor("eca", c).process.conv.kernel_size == (k,)
    assert create_adaptor("eca", 64, kernel_size=9).process.conv.kernel_size == (9,)
    a = create_adaptor("eca", C)
    x, phi = inputs()
    y = phi.mean((2, 3))
    ref = torch.sigmoid(F.conv1d(y[:, None], a.process.conv.weight, padding=1))[:, 0]
    torch.testing.assert_close(a(x, phi)[:, :, 0, 0], ref, atol=1e-6, rtol=0)


def test_dct_filters_orthonormal_and_dc():
    for size in (7, 14):  # 16 distinct (u, v) of an orthonormal 2-D DCT-II basis: Gram = I
        f = dct_filters(16, size).double().flatten(1)
        torch.testing.assert_close(f @ f.T, torch.eye(16, dtype=torch.float64), atol=1e-6, rtol=0)
    a = create_adaptor("fca", C)
    _, phi = inputs(h=7)
    desc = a.extract(phi)  # group 0 has (u, v) = (0, 0): Σ x / 7 = 7 · mean
    torch.testing.assert_close(desc[:, :4, 0], 7 * phi[:, :4].mean((2, 3)), atol=1e-5, rtol=0)
    f = dct_filters(C, 14)  # group 2 is (u, v) = (6, 0) scaled by 14 // 7 = 2 -> u = 12
    torch.testing.assert_close(
        f[8, :, 0] / f[8, 0, 0],
        torch.cos(math.pi * 12 * (torch.arange(14) + 0.5) / 14) / math.cos(math.pi * 12 * 0.5 / 14),
        atol=1e-5,
        rtol=0,
    )


# ---------------------------------------------------------------- inputs
def test_input_choices():
    x, phi = inputs()
    d = torch.randn_like(x)
    for name in ("x", "next", "phi", "diff", "pair"):
        torch.manual_seed(0)
        a = create_adaptor("stepnet", C, inputs=name).eval()
        out = a(x, phi)
        if name == "x":
            torch.testing.assert_close(a(x, d), out)
        if name in ("phi", "diff"):
            torch.testing.assert_close(a(d, phi), out)
        if name == "next":
            torch.testing.assert_close(a(x + d, phi - d), out, atol=1e-5, rtol=0)
        if name == "pair":
            assert not torch.allclose(a(x + d, phi - d), out)
    torch.manual_seed(0)
    style = create_adaptor("srm", C, inputs="diff")  # nonlinear extractor: literal difference
    torch.manual_seed(0)
    plain = create_adaptor("srm", C)
    torch.testing.assert_close(style(x, phi), plain(x, phi), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- DIA: sharing and state
def hand_dia_lstm(cell, ys):
    h = c = torch.zeros(ys[0].shape[0], C)
    out = []
    for y in ys:
        gates = cell.ih(y) + cell.hh(h)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.sigmoid(c)
        out.append(h)
    return out


def test_dia_lstm_equals_hand_written_recurrence():
    a = create_adaptor("dia_lstm", C, shared_blocks=3)
    x, phi = inputs()
    phis = [phi, phi.flip(0), 2 * phi]
    got = [a(x, p, index=i)[:, :, 0, 0] for i, p in enumerate(phis)]
    ref = hand_dia_lstm(a.process, [p.mean((2, 3)) for p in phis])
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["dia_lstm", "dia_light"])
def test_dia_state_reset_at_zero_and_carried(name):
    a = create_adaptor(name, C, shared_blocks=4)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, phi = inputs()
    other = torch.randn_like(phi)
    first = a(x, phi, index=0)
    after_phi = a(x, phi, index=1)
    a(x, other, index=0)
    after_other = a(x, phi, index=1)
    assert not torch.allclose(after_phi, after_other)  # index 1 depends on the index-0 call
    torch.testing.assert_close(a(x, phi, index=0), first, rtol=0, atol=0)  # reset at 0
    torch.testing.assert_close(a(x, phi, index=1), after_phi, rtol=0, atol=0)
    a(x, phi, index=2)
    a(x, phi, index=3)  # last block: state dropped
    with pytest.raises(RuntimeError, match="index 0"):
        a(x, phi, index=1)
    solo = create_adaptor(name, C, sharing="block")  # per-block module: every call is a first call
    torch.testing.assert_close(solo(x, phi, index=5), solo(x, phi, index=0), rtol=0, atol=0)


def test_shared_batchnorm_is_per_block():
    a = create_adaptor("srm", C, shared_blocks=3)
    assert count(a) == 2 * C + 3 * 2 * C  # cfc shared, BN per block (DIA Sec. 7.3.2)
    x, phi = inputs()
    a(x, phi, index=1)
    moved = [int(bn.num_batches_tracked) == 1 for bn in a.process.norms]
    assert moved == [False, True, False]
    a.eval()
    with torch.no_grad():
        a.process.norms[2].running_mean.fill_(5.0)
    assert not torch.allclose(a(x, phi, index=2), a(x, phi, index=0))
    assert len(create_adaptor("cbam", C, shared_blocks=2).then.process.norms) == 2
    with pytest.raises(IndexError, match="index"):
        a(x, phi, index=3)


def test_bind_counts_shared_parameters_once():
    shared = create_adaptor("dia_lstm", C, shared_blocks=3)
    blocks = nn.ModuleList([bind(shared, i) for i in range(3)])
    assert count(blocks) == count(shared) == _dia(C)
    x, phi = inputs()
    ref = [shared(x, phi, index=i) for i in range(3)]
    for blk, r in zip(blocks, ref):
        torch.testing.assert_close(blk(x, phi), r, rtol=0, atol=0)
    with pytest.raises(ValueError, match="shared_blocks=3"):
        bind(shared, 3)
    sd = blocks.state_dict()  # shared weights saved once, by the index-0 binding
    assert sum(v.numel() for v in sd.values()) == count(shared)
    assert all(k.startswith("0.adaptor.") for k in sd)
    torch.manual_seed(5)
    other = create_adaptor("dia_lstm", C, shared_blocks=3)
    fresh = nn.ModuleList([bind(other, i) for i in range(3)])
    fresh.load_state_dict(sd)
    for blk, r in zip(fresh, ref):
        torch.testing.assert_close(blk(x, phi), r, rtol=0, atol=0)


# ---------------------------------------------------------------- gates
def test_gates_bounded_including_extremes():
    z = torch.tensor([-40.0, -3.0, -1.0, 0.0, 1.0, 3.0, 8.0])  # σ(2z) underflows below z ≈ -44
    for gate in ("sigmoid", "hard_sigmoid", "softsign", "tanh"):
        a = create_adaptor("se", C, gate=gate)
        v = a.gate(z)
        assert bool(((v > 0) & (v <= 1)).all()) and torch.all(v[1:] >= v[:-1])
        assert v[3].item() == pytest.approx(0.5)
    hs = create_adaptor("se", C, gate="hard_sigmoid").gate(torch.tensor([-1e6, 1e6]))
    assert 0 < hs[0] < 0.01 and 0.99 < hs[1] < 1
    a = create_adaptor("dia_lstm", C, gate="hard_sigmoid", sharing="block")  # DIA: h = o · gate(c)
    x, phi = inputs()
    assert bool((a(x, phi) < 1).all())


def test_every_valid_combination_builds_and_is_bounded():
    """The adaptor-structure search space: every accepted (inputs, extractor, processor), gates
    rotated over the combinations (a gate is an elementwise map, tested on its own below)."""
    import itertools

    x, phi = inputs(channels=64, h=4)
    gates = SPEC_CHOICES["gate"]
    built = 0
    for combo in itertools.product(
        *(SPEC_CHOICES[k] for k in ("inputs", "extractor", "processor"))
    ):
        try:
            spec = AdaptorSpec(*combo, gate=gates[built % len(gates)])
        except ValueError:
            continue
        dt = create_adaptor(spec, 64)(x, phi)
        assert torch.broadcast_shapes(dt.shape, x.shape) == x.shape, combo
        assert bool(((dt > 0) & (dt < 1)).all()), combo
        built += 1
    assert built == 636 // len(gates)


# ---------------------------------------------------------------- spec: YAML and validation
def test_spec_yaml_round_trip_and_dict_forms():
    spec = ADAPTORS["cbam"](C).spec
    again = AdaptorSpec.from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict())))
    assert again == spec
    a = create_adaptor({"preset": "eca", "kernel_size": 7}, C)
    assert a.process.conv.kernel_size == (7,)
    b = create_adaptor({"inputs": "pair", "processor": "eca"}, C)
    assert b.process.conv.in_channels == 2
    assert isinstance(create_adaptor(AdaptorSpec(processor="ie"), C), Adaptor)
    assert create_adaptor({"preset": "none"}, C) is None


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: create_adaptor("sr", C), r"did you mean 'srm'"),
        (lambda: create_adaptor({"extracter": "gap"}, C), r"did you mean 'extractor'"),
        (lambda: create_adaptor("se", C, reductoin=4), r"did you mean 'reduction'"),
        (lambda: AdaptorSpec(gate="sigmod"), r"did you mean 'sigmoid'"),
        (
            lambda: AdaptorSpec(extractor="none", processor="fc"),
            r"extractor 'none' conflicts with processor 'fc'",
        ),
        (
            lambda: AdaptorSpec(extractor="none", processor="sge", inputs="pair"),
            r"inputs 'pair' conflicts",
        ),
        (lambda: AdaptorSpec(norm="bn"), r"`norm` applies only to cfc.*processor='fc'"),
        (lambda: AdaptorSpec(processor="eca", kernel_size=4), r"kernel_size.*odd.*kernel_size=4"),
        (
            lambda: AdaptorSpec(then=AdaptorSpec(sharing="stage")),
            r"sharing 'block' conflicts with then",
        ),
        (lambda: create_adaptor("se", 8, reduction=16), r"reduction.*channels=8"),
        (lambda: create_adaptor("fca", 24), r"divisible by 16.*channels=24"),
        (lambda: create_adaptor("sge", 48, groups=64), r"groups.*divide.*groups=16"),
        (lambda: create_adaptor("none", C, reduction=4), r"takes no options"),
        (lambda: create_adaptor(3, C), r"must be None, a name in ADAPTORS"),
        (lambda: create_adaptor("se", 0), r"`channels` must be a positive int"),
    ],
)
def test_spec_validation_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("name", sorted(ADAPTORS))
def test_every_preset_fits_small_channel_counts(name):
    """Published defaults (DIA light r=20, SGE 64 groups) fit a 16-channel net; given values don't move."""
    x = torch.randn(2, 16, 4, 4)
    adaptor = (
        create_adaptor(name, 16, shared_blocks=2)
        if name.startswith("dia")
        else create_adaptor(name, 16)
    )
    if adaptor is None:
        return
    dt = adaptor(x, torch.randn_like(x), index=0)
    assert torch.all((dt > 0) & (dt < 1))
    if name == "sge":
        assert adaptor.process.groups == 16  # gcd(64, 16)
        with pytest.raises(ValueError, match="groups"):
            create_adaptor("sge", 16, groups=64)
    if name == "dia_light":
        with pytest.raises(ValueError, match="reduction"):
            create_adaptor("dia_light", 16, shared_blocks=2, reduction=20)


def test_build_processor_names_match_the_spec_and_unknown_is_an_error():
    from odeattn.adaptors._process import PROCESSOR_NAMES, build_processor
    from odeattn.adaptors._spec import PROCESSORS

    assert set(PROCESSOR_NAMES) == set(PROCESSORS)
    with pytest.raises(ValueError, match=r"unknown processor 'lstn'; did you mean 'lstm'\?"):
        build_processor("lstn", 8, 2, {"reduction": 4}, 1, "sigmoid")
    cell = build_processor("lstm", 8, 2, {"reduction": 4}, 1, "sigmoid")
    assert type(cell).__name__ == "DIACell"
