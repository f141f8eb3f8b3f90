"""Supernet training through ``fit`` (SPOS, sandwich rule), BN recalibration and scoring."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from odeattn.data import load_dataset
from odeattn.supernet import Choices, Supernet, calibration_batches, recalibrate, score
from odeattn.train import RECIPES, TrainConfig, evaluate, fit

torch.set_num_threads(1)

NAME = "digits_resnet"
FIXED = {"widths": [16, 16, 16], "stem_width": 8}
ALL = Choices(
    placement=True,
    adaptors=("none", "se", "stepnet"),
    methods=("euler", "heun", "rk4"),
    depths=((1, 2, 3),) * 3,
    sharing=("block", "stage"),
)
# stage-shared StepNet: its per-block IEBN norms are BatchNorms too (two of three used here)
ARCH = {"blocks": [1, 2, 3], "placement": "1|01|101", "adaptor": "stepnet",
        "method": ["euler", "heun", "rk4"], "sharing": "stage"}  # fmt: skip


def _perturbed(sn: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in sn.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return sn


def _data():
    return load_dataset("synthetic", n_train=96, n_test=16, val_fraction=0.25)


def test_spos_draws_one_seeded_path_per_training_forward_and_the_state_dict_keeps_the_draws():
    sn = Supernet(NAME, FIXED, choices=ALL, seed=5).train()
    x = torch.randn(4, 1, 8, 8)
    g = torch.Generator().manual_seed(5)
    for _ in range(3):
        sn(x)
        assert sn.last_archs == [sn.sample(g)]
    state = copy.deepcopy(sn.state_dict())
    sn(x)
    drawn = sn.last_archs
    fresh = Supernet(NAME, FIXED, choices=ALL, seed=99).train()
    fresh.load_state_dict(state)
    fresh(x)
    assert fresh.last_archs == drawn
    sn.eval()
    torch.testing.assert_close(sn(x), sn(x, sn.largest()), rtol=0, atol=0)  # eval_arch


def test_sandwich_accumulates_the_gradients_of_all_paths_in_one_backward():
    sn = _perturbed(Supernet(NAME, FIXED, choices=ALL, sandwich=2, seed=3).double()).train()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(10, (8,), generator=gen)
    F.cross_entropy(sn(x), y).backward()  # what fit does with the returned logits
    got = {n: p.grad.clone() for n, p in sn.named_parameters() if p.grad is not None}
    archs = sn.last_archs
    g = torch.Generator().manual_seed(3)
    assert archs == [sn.largest(), sn.smallest(), sn.sample(g), sn.sample(g)]
    sn.zero_grad(set_to_none=True)
    big = sn(x, archs[0])
    teacher = big.detach().softmax(1)
    total = F.cross_entropy(big, y)
    for a in archs[1:]:  # in-place distillation: soft cross-entropy against the largest
        total = total - (teacher * F.log_softmax(sn(x, a), 1)).sum(1).mean()
    total.backward()
    want = {n: p.grad for n, p in sn.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys()
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-10, atol=1e-12, msg=n)


@pytest.mark.parametrize("sandwich", [None, 0])
def test_fit_trains_the_supernet_and_resumes_its_draws(tmp_path, sandwich):
    cfg = TrainConfig(epochs=2, batch_size=24, lr=0.05, device="cpu", eval_test=False)
    data = _data()

    def make():
        torch.manual_seed(0)  # the same initial weights
        return Supernet(NAME, FIXED, choices=ALL, sandwich=sandwich, seed=1)

    straight = make()
    full = fit(straight, data, cfg)
    assert 0.0 <= full["val_accuracy"] <= 1.0 and full["epochs_run"] == 2
    first = make()
    fit(first, data, cfg, lambda epoch, m: True, checkpoint=tmp_path / "ck.pt")  # stop after 1
    resumed = make()
    fit(resumed, data, cfg, resume=tmp_path / "ck.pt")
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a if k != "_extra_state")
    assert torch.equal(a["_extra_state"]["generator"], b["_extra_state"]["generator"])


def _norms(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


def test_recalibration_equals_a_direct_pass_and_changes_nothing_else():
    sn = _perturbed(Supernet(NAME, FIXED, choices=ALL).double()).train()
    gen = torch.Generator().manual_seed(4)
    batches = [torch.randn(8, 1, 8, 8, generator=gen, dtype=torch.float64) for _ in range(3)]
    direct = sn.extract(ARCH).eval()
    for m in _norms(direct):
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        for x in batches:
            direct(x)
    before = {k: v.clone() for k, v in sn.state_dict().items() if k != "_extra_state"}

    assert recalibrate(sn, ARCH, batches) == len(_norms(direct))
    assert sn.training and all(m.training for m in sn.modules())  # modes restored
    after = sn.extract(ARCH).state_dict()
    for k, v in direct.state_dict().items():
        assert torch.equal(after[k], v), k
    # from first principles: the first block's bn1 sees stem(x); mean of batch means / variances
    stem = [sn.stem(x).detach() for x in batches]
    bn1 = sn.branches[0][0].bn1
    torch.testing.assert_close(
        bn1.running_mean, torch.stack([s.mean((0, 2, 3)) for s in stem]).mean(0)
    )
    torch.testing.assert_close(
        bn1.running_var, torch.stack([s.var((0, 2, 3)) for s in stem]).mean(0)
    )
    now = sn.state_dict()
    changed = {k for k in before if not torch.equal(before[k], now[k])}
    kinds = {k.rsplit(".", 1)[1] for k in changed}
    assert kinds == {"running_mean", "running_var", "num_batches_tracked"}
    assert not any(
        k.startswith(("branches.0.1.", "branches.0.2.", "adaptors.se__")) for k in changed
    )
    assert any(k.startswith("adaptors.stepnet__stage.2.process.norms.1.") for k in changed)
    assert not any(k.startswith("adaptors.stepnet__stage.2.process.norms.2.") for k in changed)


def test_score_is_recalibrated_evaluation_and_leaves_the_supernet_unchanged():
    sn = _perturbed(Supernet(NAME, FIXED, choices=ALL)).train()
    data = _data()
    before = {k: v.clone() for k, v in sn.state_dict().items() if k != "_extra_state"}
    got = score(sn, ARCH, data, recal_batches=2, batch_size=16)
    assert got.keys() == {"val_accuracy", "val_loss"}
    now = sn.state_dict()
    assert all(torch.equal(before[k], now[k]) for k in before)
    assert sn.training and all(m.training for m in sn.modules())
    assert score(sn, ARCH, data, recal_batches=2, batch_size=16) == got  # order-free, repeatable
    ref = copy.deepcopy(sn)
    recalibrate(ref, ARCH, calibration_batches(data, 2, batch_size=16))
    want = evaluate(ref.extract(ARCH), data, "val")
    assert got["val_accuracy"] == want["accuracy"]
    assert got["val_loss"] == pytest.approx(want["loss"], rel=1e-6)


def test_bad_calibration_inputs_are_errors():
    sn = Supernet(NAME, FIXED, choices=ALL)
    with pytest.raises(ValueError, match="`batches` must hold at least one input batch"):
        recalibrate(sn, ARCH, [])
    with pytest.raises(ValueError, match="`recal_batches` must be a positive int"):
        score(sn, ARCH, _data(), recal_batches=0)
    with pytest.raises(ValueError, match="`batch_size` must be an int ≥ 2"):
        calibration_batches(_data(), 2, batch_size=1)


@pytest.mark.slow
def test_spos_training_on_digits_scores_architectures_above_chance():
    data = load_dataset("digits")
    choices = Choices(
        placement=True, adaptors=("none", "se"), methods=("euler", "heun"), depths=((1, 2),) * 3
    )
    sn = Supernet(NAME, {}, choices=choices, seed=0)
    cfg = dataclasses.replace(RECIPES["digits"], epochs=3, device="cpu", eval_test=False)
    fit(sn, data, cfg)
    g = torch.Generator().manual_seed(0)
    for arch in [sn.largest(), sn.smallest(), sn.sample(g), sn.sample(g)]:
        s = score(sn, arch, data, recal_batches=10)
        assert s["val_accuracy"] > 0.3, (arch, s)  # chance is 0.1; 0.52–0.84 measured
