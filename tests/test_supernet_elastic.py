"""Elastic width: a narrow path of the supernet is the stand-alone network on its leading channels.

Values against references: every narrow path's output equals its extracted model's (float64),
its gradients land in the leading slice of the shared tensors only and equal the extracted
model's, a train-mode forward moves the leading slice of the BatchNorm statistics exactly as the
extracted model's BatchNorms move, and BatchNorm recalibration of a narrow path equals the same
recalibration of its extracted model.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from odeattn.supernet import Choices, Supernet, recalibrate
from odeattn.supernet._slice import fit, run_sliced

torch.set_num_threads(1)

NAME = "digits_resnet"
FIXED = {"stem_width": 4}  # stage 0 at width 4: identity shortcut; at 2 or 8: a projection
WIDTHS = ((2, 4, 8),) * 3
KINDS = ("none", "se", "stepnet", "eca")
CASES = {
    "network": (
        {},
        Choices(adaptors=KINDS, methods=("euler", "heun"), depths=((1, 2),) * 3, widths=WIDTHS),
    ),
    "per_block": (
        {"preact": False},
        Choices(adaptors=KINDS, adaptor_per_block=True, depths=((1, 2),) * 3, widths=WIDTHS),
    ),
    "sharing": (
        {},
        Choices(
            placement=True,
            adaptors=("se", "eca", "dia_lstm"),
            sharing=("block", "stage"),
            widths=WIDTHS,
        ),
    ),
}


def _perturbed(sn: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in sn.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for name, b in sn.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g, dtype=b.dtype))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g, dtype=b.dtype))
            elif name.endswith("num_batches_tracked"):
                b.fill_(5)  # (at 0 a cumulative average would ignore unreset statistics)
    return sn


def _supernet(case: str) -> Supernet:
    fixed, choices = CASES[case]
    return _perturbed(Supernet(NAME, fixed, choices=choices).double())


def _narrow(sn: Supernet, n: int, seed: int = 0) -> list[dict]:
    """n drawn architectures whose widths are mixed (not all the largest, not all equal)."""
    g, out = torch.Generator().manual_seed(seed), []
    while len(out) < n:
        a = sn.sample(g)
        if len(set(a["widths"])) > 1 and a["widths"] != [8, 8, 8]:
            out.append(a)
    return out


def _slices(sn: Supernet, model: nn.Module, arch: dict):
    """(model tensor, the supernet tensor it comes from, kernel?) for every mapped tensor."""
    for dst, src, _ in sn._pairs(model, sn._path(arch)):
        have = src.state_dict(keep_vars=True)
        convs = {f"{n}.weight" if n else "weight" for n, m in dst.named_modules()
                 if isinstance(m, _ConvNd)}  # fmt: skip
        for k, t in dst.state_dict(keep_vars=True).items():
            yield t, have[k], k in convs


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_a_narrow_path_equals_its_extracted_model(case: str, train: bool) -> None:
    sn = _supernet(case).train(train)
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for arch in _narrow(sn, 6):
        model = sn.extract(arch)  # (before the forward: a train forward moves the statistics)
        assert model.architecture()["widths"] == arch["widths"] and model.training == train
        rng = torch.get_rng_state()
        out = sn(x, arch)
        assert torch.equal(torch.get_rng_state(), rng)  # the skeleton's init draws nothing
        torch.testing.assert_close(out, model(x), rtol=0, atol=1e-6)


def test_every_adaptor_kind_runs_narrow_and_eca_takes_the_centre_of_its_kernel() -> None:
    sn = _supernet("network").eval()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    for kind in KINDS:
        arch = {"blocks": [2, 1, 2], "widths": [2, 8, 4], "adaptor": kind,
                "method": ["heun", "euler", "heun"]}  # fmt: skip
        model = sn.extract(arch)
        torch.testing.assert_close(sn(x, arch), model(x), rtol=0, atol=1e-6)
    # ECA's kernel is 1 at 2 channels, 3 at 8: the narrow stage uses the middle tap
    wide = sn.adaptors["eca__block"][0][0].process.conv.weight  # (1, 1, 3)
    narrow = model.layer1.blocks[0].step.process.conv.weight  # (1, 1, 1)
    assert wide.shape[-1] == 3 and narrow.shape[-1] == 1
    assert torch.equal(narrow[..., 0], wide[..., 1])


def test_the_largest_and_smallest_take_the_extreme_widths() -> None:
    sn = _supernet("network")
    assert sn.largest()["widths"] == [8, 8, 8] and sn.smallest()["widths"] == [2, 2, 2]
    assert sn.head.fc.in_features == 8  # built at the largest width
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    for arch in (sn.largest(), sn.smallest()):
        torch.testing.assert_close(sn.eval()(x, arch), sn.extract(arch)(x), rtol=0, atol=1e-6)


def test_the_sliced_run_at_full_width_equals_the_compiled_path() -> None:
    """The generic mechanism against the one the existing results use (full width)."""
    sn = _supernet("sharing").eval()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    for arch in [sn.largest(), {**sn.smallest(), "widths": [8, 8, 8]}]:
        path = sn._path(arch)
        model, names = sn._skeleton(path)
        out = run_sliced(model, names, sn._pairs(model, path), x, False)
        torch.testing.assert_close(out, sn(x, arch), rtol=0, atol=1e-10)


def test_gradients_of_a_narrow_path_fill_only_the_leading_slice() -> None:
    sn = _supernet("network").train()
    arch = {"blocks": [2, 2, 1], "widths": [8, 2, 4], "adaptor": "eca",
            "method": ["heun", "euler", "heun"]}  # fmt: skip
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    model = sn.extract(arch)
    sn(x, arch).square().sum().backward()
    model(x).square().sum().backward()
    rest = {id(p): p.grad.clone() for p in sn.parameters() if p.grad is not None}
    n = 0
    for t, src, kernel in _slices(sn, model, arch):
        if isinstance(t, nn.Parameter):
            torch.testing.assert_close(fit(src.grad, t.shape, kernel, ""), t.grad)
            fit(rest[id(src)], t.shape, kernel, "").zero_()
            n += 1
    assert n > 30 and all(not g.any() for g in rest.values())  # nothing outside the slices


def test_a_train_forward_moves_the_leading_slice_of_the_statistics_as_the_model_does() -> None:
    sn = _supernet("per_block").train()
    arch = _narrow(sn, 1, seed=3)[0]
    model = sn.extract(arch)
    before = {id(b): b.clone() for b in sn.buffers()}
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    sn(x, arch)
    model(x)
    moved = 0
    for t, src, _ in _slices(sn, model, arch):
        if t.dtype == torch.float64 and not isinstance(t, nn.Parameter):  # running stats
            view = fit(src, t.shape, False, "")
            torch.testing.assert_close(view, t, rtol=0, atol=1e-12)
            moved += int(not torch.equal(view, fit(before[id(src)], t.shape, False, "")))
            fit(before[id(src)], t.shape, False, "").copy_(view)
    assert moved > 10  # the slices moved, and nothing else did:
    assert all(torch.equal(b, before[id(b)]) for b in sn.buffers() if b.dtype == torch.float64)


def _recal_by_hand(model: nn.Module, batches: list[torch.Tensor]) -> None:
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    model.eval()


def test_recalibrating_a_narrow_path_equals_recalibrating_its_extracted_model() -> None:
    sn = _supernet("network")
    arch = {"blocks": [2, 1, 2], "widths": [4, 2, 8], "adaptor": "stepnet",
            "method": ["euler", "heun", "heun"]}  # fmt: skip
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(8, 1, 8, 8, generator=g, dtype=torch.float64) for _ in range(3)]
    model = sn.extract(arch)
    _recal_by_hand(model, batches)
    others = {n: b.clone() for n, b in sn.named_buffers()}
    count = recalibrate(sn, arch, batches)
    assert count == sum(isinstance(m, _BatchNorm) for m in model.modules()) and sn.training
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(sn.eval()(x, arch), model(x), rtol=0, atol=1e-10)
    for t, src, _ in _slices(sn, model, arch):  # the slices hold the model's statistics …
        torch.testing.assert_close(fit(src, t.shape, False, ""), t, rtol=0, atol=1e-12)
    for n, b in sn.named_buffers():  # … and every channel outside them is untouched
        if "running" in n:
            c = b.shape[0]
            used = [t.shape[0] for t, src, _ in _slices(sn, model, arch) if src is b]
            k = used[0] if used else 0
            assert torch.equal(b[k:c], others[n][k:c]), n
