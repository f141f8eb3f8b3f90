"""The weight-sharing supernet: choices, architectures, paths equal to the extracted models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from odeattn.models import create_model
from odeattn.proxies import count_params
from odeattn.supernet import Choices, Supernet

torch.set_num_threads(1)

NAME = "digits_resnet"
FIXED = {"widths": [16, 16, 16], "stem_width": 8}  # tiny; stem 8 -> 16 gives a projection too
ALL = Choices(
    placement=True,
    adaptors=("none", "se", "eca", "stepnet"),
    methods=("euler", "heun", "rk4"),
    depths=((1, 2, 3),) * 3,
    sharing=("block", "stage"),
)
SHARING = ("block", "stage")
BOTTLENECK = "digits_resnet_bottleneck"
PER_BLOCK = Choices(adaptors=("none", "se", "eca", "stepnet"), adaptor_per_block=True)
ECA3 = {"preset": "eca", "kernel_size": 3}  # a fixed adaptor given as a spec dict
# One dimension at a time (the others fixed), DIA sharing, and all together; name, fixed, choices.
CASES = {
    "placement": (NAME, {**FIXED, "adaptor": "se"}, Choices(placement=True)),
    "adaptor": (NAME, FIXED, Choices(adaptors=("none", "se", "eca", "stepnet"))),
    "method": (NAME, FIXED, Choices(methods=("euler", "midpoint", "heun", "rk4", "rk38"))),
    "depth": (NAME, FIXED, Choices(depths=((1, 2, 3), (1, 3), (2, 3)))),
    "sharing": (
        NAME,
        FIXED,
        Choices(placement=True, adaptors=("dia_lstm", "stepnet"), sharing=SHARING),
    ),
    "fixed_spec": (
        NAME,
        {**FIXED, "adaptor": ECA3},
        Choices(placement=True, methods=("heun", "rk4")),
    ),
    "post_act": (NAME, {**FIXED, "preact": False}, ALL),
    "bottleneck": (BOTTLENECK, {}, ALL),
    "all": (NAME, FIXED, ALL),
    "per_block": (NAME, FIXED, PER_BLOCK),
    "per_block_all": (
        NAME,
        {**FIXED, "preact": False},
        Choices(
            adaptors=PER_BLOCK.adaptors,
            adaptor_per_block=True,
            methods=("euler", "rk4"),
            depths=((1, 2, 3),) * 3,
        ),
    ),
}


def _perturbed(sn: nn.Module, seed: int = 0) -> nn.Module:
    """Weights and BN statistics away from their (often zero / one) initial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sn.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for name, b in sn.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g, dtype=b.dtype))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g, dtype=b.dtype))
    return sn


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    name, fixed, choices = CASES[request.param]
    sn = _perturbed(Supernet(name, fixed, choices=choices).double())
    return name, fixed, sn


def _draws(sn: Supernet, n: int, seed: int = 1) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [sn.largest(), sn.smallest()] + [sn.sample(g) for _ in range(n)]


def test_extracted_model_equals_the_supernet_path(case):
    name, fixed, sn = case
    sn.eval()
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    outs = {}
    for arch in _draws(sn, 4):
        model = sn.extract(arch)
        assert not model.training and next(model.parameters()).dtype == torch.float64
        want = sn(x, arch)
        torch.testing.assert_close(model(x), want, rtol=0, atol=1e-6)
        reference = create_model(name, **fixed, **arch)
        assert count_params(model) == count_params(reference)
        assert model.architecture() == reference.architecture()
        outs[repr(arch)] = want
    # the paths differ (the check above could fail): no two distinct architectures agree
    outs = list(outs.values())
    assert len(outs) >= 3
    assert all(not torch.allclose(a, b) for i, a in enumerate(outs) for b in outs[:i])


def test_a_path_touches_only_its_own_parameters(case):
    name, fixed, sn = case
    sn.train()
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for arch in _draws(sn, 3, seed=4):
        sn.zero_grad(set_to_none=True)
        sn(x, arch).square().sum().backward()
        touched = [p for p in sn.parameters() if p.grad is not None]
        assert sum(p.numel() for p in touched) == count_params(create_model(name, **fixed, **arch))


def test_unused_adaptors_and_blocks_get_no_gradient():
    sn = Supernet(NAME, FIXED, choices=ALL)
    arch = {"blocks": [1, 2, 3], "placement": "1|01|000", "adaptor": "se", "method": "heun",
            "sharing": "block"}  # fmt: skip
    sn(torch.randn(4, 1, 8, 8), arch).sum().backward()
    used = {("se__block", 0, 0), ("se__block", 1, 1)}  # the blocks with bit 1 within depth
    for key, bank in sn.adaptors.items():
        for s, stage in enumerate(bank):
            owners = enumerate(stage) if isinstance(stage, nn.ModuleList) else [(None, stage)]
            for i, owner in owners:
                grads = [p.grad is not None for p in owner.parameters()]
                assert all(grads) if (key, s, i) in used else not any(grads), (key, s, i)
    assert all(p.grad is None for p in sn.branches[0][1].parameters())  # beyond depth 1
    assert all(p.grad is not None for p in sn.branches[2][2].parameters())


def test_sample_is_seeded_uniform_and_independent():
    sn = Supernet(NAME, FIXED, choices=ALL)
    a = [sn.sample(torch.Generator().manual_seed(7)) for _ in range(2)]
    assert a[0] == a[1]
    g = torch.Generator().manual_seed(0)
    draws = [sn.sample(g) for _ in range(900)]
    for key, options in (("adaptor", ALL.adaptors), ("sharing", ALL.sharing)):
        for o in options:  # expected 1/len; 5 standard deviations of a binomial share
            share = sum(d[key] == o for d in draws) / 900
            assert abs(share - 1 / len(options)) < 5 * (1 / len(options) / 900) ** 0.5
    methods = [m for d in draws for m in d["method"]]
    assert all(abs(methods.count(m) / 2700 - 1 / 3) < 0.05 for m in ALL.methods)
    bits = "".join(d["placement"].replace("|", "") for d in draws)
    assert abs(bits.count("1") / len(bits) - 0.5) < 0.03
    depth = [k for d in draws for k in d["blocks"]]
    assert all(abs(depth.count(k) / 2700 - 1 / 3) < 0.05 for k in (1, 2, 3))
    assert all([len(g) for g in d["placement"].split("|")] == d["blocks"] for d in draws)


def test_largest_and_smallest():
    sn = Supernet(NAME, FIXED, choices=ALL)
    assert sn.largest() == {
        "blocks": [3, 3, 3],
        "placement": "111|111|111",
        "adaptor": "stepnet",  # 6C per block, SE 2C²/16 + C/16 + C = 49 at C = 16
        "method": ["rk4"] * 3,
        "sharing": "block",
    }
    assert sn.smallest() == {
        "blocks": [1, 1, 1],
        "placement": "0|0|0",
        "adaptor": "none",
        "method": ["euler"] * 3,
        "sharing": "block",
    }
    big, small = (create_model(NAME, **FIXED, **a) for a in (sn.largest(), sn.smallest()))
    g = torch.Generator().manual_seed(0)
    counts = [count_params(create_model(NAME, **FIXED, **sn.sample(g))) for _ in range(20)]
    assert count_params(small) <= min(counts) and count_params(big) >= max(counts)
    assert sn.eval_arch == sn.largest()


@pytest.mark.parametrize(
    ("choices", "match"),
    [
        (dict(adaptors=("none", "sx")), "unknown adaptor 'sx'; did you mean 'se'"),
        (dict(methods=("rk4", "heunn")), "unknown method 'heunn'; did you mean 'heun'"),
        (dict(methods="rk4"), "`choices.methods` must be a non-empty sequence"),
        (dict(depths=((1, 0),)), "`choices.depths` must be one sequence"),
        (dict(widths=((4, 0),)), "`choices.widths` must be one sequence of allowed widths"),
        (dict(widths=((4, 8.0),)), "`choices.widths` must be one sequence of allowed widths"),
        (dict(widths=((4, True),)), "`choices.widths` must be one sequence of allowed widths"),
        (dict(widths=(8, 16)), "`choices.widths` must be one sequence of allowed widths"),
        (dict(widths="8"), "`choices.widths` must be one sequence of allowed widths"),
        (dict(widths=()), "`choices.widths` must be one sequence of allowed widths"),
        (dict(widths=((4, 8, 4),)), "`choices.widths` must list each of a stage's widths once"),
        (dict(sharing=("stag",)), "unknown sharing 'stag'; did you mean 'stage'"),
        (dict(placement=1), "`choices.placement` must be True or False"),
    ],
)
def test_choices_are_checked_at_construction(choices, match):
    with pytest.raises(ValueError, match=match):
        Choices(**choices)


@pytest.mark.parametrize("dim", ["stem_width", "model", "norm", "block"])
def test_an_unshareable_dimension_names_itself_and_the_way_out(dim):
    with pytest.raises(ValueError, match=rf"`{dim}` cannot be a supernet dimension.*train-from"):
        Choices.from_dict({dim: [1, 2]})
    with pytest.raises(ValueError, match="unknown supernet dimension 'method'; did you mean"):
        Choices.from_dict({"method": ["rk4"]})


@pytest.mark.parametrize(
    ("name", "fixed", "choices", "match"),
    [
        ("digits_lm_resnet", {}, Choices(methods=("euler",)), "ResNet family only.*train-from"),
        ("digits_resnt", {}, Choices(methods=("euler",)), "did you mean 'digits_resnet'"),
        (NAME, {"method": "heun"}, Choices(methods=("euler",)), "both fixed .* and searched"),
        (NAME, {"widthz": [8] * 3}, Choices(), "did you mean 'widths'"),
        (NAME, {"placement": "1|1|1"}, Choices(depths=((1, 2),) * 3), "cannot follow elastic"),
        (NAME, {}, Choices(placement=True, adaptors=("none",)), "needs an adaptor"),
        (NAME, {}, Choices(depths=((1, 2),) * 2), "one tuple per stage \\(3 stages\\)"),
        (NAME, {}, {"stem_width": [8, 16]}, "`stem_width` cannot be a supernet dimension"),
        (
            NAME,
            FIXED,
            Choices(widths=((4, 8),) * 3),
            "fixed .*searched by the choices \\(choices.w",
        ),
        (NAME, {}, Choices(widths=((4, 8),) * 2), "`choices.widths` must have one tuple per st"),
    ],
)
def test_supernet_construction_errors(name, fixed, choices, match):
    with pytest.raises(ValueError, match=match):
        Supernet(name, fixed, choices=choices)


GOOD = {"blocks": [1, 2, 3], "placement": "1|11|111", "adaptor": "se", "method": "heun",
        "sharing": "block"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"widths": [8] * 3}, "'widths', which this supernet does not search"),
        ({"stem_width": 8}, "does not search \\(changes the shape"),
        ({"sharing": None}, "missing \\['sharing'\\]"),  # None: the key is left out
        ({"blocks": [1, 2, 4]}, "arch\\['blocks'\\]"),
        ({"placement": "1|11|11"}, "group lengths"),
        ({"adaptor": "cbam"}, "not among the supernet's choices"),
        ({"method": ["heun", "rk44", "rk4"]}, "did you mean 'rk4'"),
    ],
)
def test_an_architecture_outside_the_choices_is_an_error(change, match):
    sn = Supernet(NAME, FIXED, choices=ALL)
    sn(torch.randn(2, 1, 8, 8), GOOD)  # the unchanged one runs
    arch = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=match):
        sn(torch.randn(2, 1, 8, 8), arch)
    with pytest.raises(ValueError, match=match):
        sn.extract(arch)
