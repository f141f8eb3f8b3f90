"""LM-ResNet (Lu et al., ICML 2018) as a create_model family: parameter count = the same-depth
ResNet's + one k_n per block, exactly; architecture() round trip; k = 0 is the plain ResNet
(same weights, same logits and the same NSI); the recorder measures its blocks; multistep and
one-step schemes per stage."""

from __future__ import annotations

import pytest
import torch

from odeattn.compile import MultistepStep
from odeattn.models import MULTISTEP_METHODS, create_model, list_models
from odeattn.stiffness import record


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    ("lm", "plain", "blocks"),
    [
        ("digits_lm_resnet", "digits_resnet", 9),
        ("lm_resnet20", "resnet20", 9),
        ("lm_resnet32", "resnet32", 15),
    ],
)
def test_parameter_count_is_resnet_plus_one_k_per_block(lm, plain, blocks):
    a, b = create_model(lm), create_model(plain)
    ks = [n for n, _ in a.named_parameters() if n.endswith(".k")]
    assert len(ks) == blocks
    assert _count(a) == _count(b) + blocks
    assert sum(isinstance(m, MultistepStep) for m in a.modules()) == blocks


def test_registered_as_a_family():
    assert "digits_lm_resnet" in list_models("lm_resnet")
    assert {"lm", "ab2", "pece2"} <= set(MULTISTEP_METHODS)


def test_architecture_round_trip():
    torch.manual_seed(0)
    m = create_model("digits_lm_resnet", method=["lm", "pece2", "euler"], blocks=[2, 3, 1])
    arch = m.architecture()
    assert arch["family"] == "lm_resnet" and arch["method"] == ["lm", "pece2", "euler"]
    m2 = create_model(**arch)
    assert m2.architecture() == arch
    m2.load_state_dict(m.state_dict())
    x = torch.randn(4, 1, 8, 8)
    m.eval(), m2.eval()
    torch.testing.assert_close(m2(x), m(x), rtol=0, atol=0)


def _pair(seed: int = 0):
    """digits_lm_resnet with k = 0 and digits_resnet with the same weights (in module order)."""
    torch.manual_seed(seed)
    lm, plain = create_model("digits_lm_resnet"), create_model("digits_resnet")
    src = [v for k, v in lm.state_dict().items() if not k.endswith(".k")]
    dst = plain.state_dict()
    assert [v.shape for v in src] == [v.shape for v in dst.values()]
    plain.load_state_dict(dict(zip(dst, src)))
    return lm.eval(), plain.eval()


def test_k_zero_is_the_plain_resnet_and_k_changes_it():
    lm, plain = _pair()
    x = torch.randn(8, 1, 8, 8)
    torch.testing.assert_close(lm(x), plain(x))
    with torch.no_grad():
        lm.stages[1][2].k.fill_(0.5)
    assert (lm(x) - plain(x)).abs().max() > 1e-3


def test_stiffness_recorder_gives_nsi_for_its_blocks():
    lm, plain = _pair()
    x = torch.randn(8, 1, 8, 8)
    with torch.no_grad(), record(lm) as r1, record(plain) as r2:
        lm(x), plain(x)
    n1, n2 = r1.nsi(), r2.nsi()
    assert n1.shape == (8, 6) and r1.stage == [0, 0, 1, 1, 2, 2]  # first of each stage left out
    assert torch.isfinite(n1).all() and (n1 > 0).all()
    torch.testing.assert_close(n1, n2)  # k = 0: the same steps as the ResNet


def test_k_gradient_and_multistep_stage_schemes():
    torch.manual_seed(0)
    m = create_model("digits_lm_resnet", method=["lm", "ab3", "pece2"])
    m(torch.randn(4, 1, 8, 8)).sum().backward()
    k = m.stages[0][1].k
    assert k.grad is not None and k.grad.abs() > 0
    assert [type(b).__name__ for b in m.stages[2]] == ["MultistepStep"] * 3


def test_unknown_method_is_an_error_with_a_suggestion():
    with pytest.raises(ValueError, match="did you mean 'pece2'"):
        create_model("digits_lm_resnet", method="pece22")
    with pytest.raises(ValueError, match="one per stage"):
        create_model("digits_lm_resnet", method=["lm", "lm"])


@pytest.mark.slow
def test_trains_on_digits_within_one_point_of_resnet():
    """Issue 11: LM-ResNet trains on digits to within 1 point of the same-depth ResNet (test
    accuracy, mean of seeds 0-2, digits recipe; recorded: benchmarks/README.md, LM-ResNet)."""
    import statistics

    from odeattn.data import load_dataset
    from odeattn.train import RECIPES, TrainConfig, fit

    data = load_dataset("digits")
    acc: dict[str, list[float]] = {"digits_resnet": [], "digits_lm_resnet": []}
    for seed in range(3):
        cfg = TrainConfig.from_dict({"seed": seed, "device": "cpu"}, RECIPES["digits"])
        for name in acc:
            torch.manual_seed(seed)
            out = fit(create_model(name), data, cfg)
            acc[name].append(100 * out["test_accuracy"])
    lm, plain = (statistics.fmean(acc[n]) for n in ("digits_lm_resnet", "digits_resnet"))
    assert abs(lm - plain) <= 1.0, acc
    assert plain > 95.0, acc
