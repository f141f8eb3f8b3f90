"""Parameter counts against the papers' tables (within their rounding, or 0.5 %) and exact counts.

Sources: DIA paper Tables 4/10/11 (ResNet-164/83, CIFAR-10/100), StepNet Table 1, IEBN
(+24,224), torchdiffeq's MNIST ODE-Net (≈ 208k), RKCNN Table 3 (k = 120), torchvision.
The group's ResNet-164 is bearpaw's post-activation network (1,704,154 / 1,727,284 exactly).
"""

from __future__ import annotations

import pytest

from odeattn.models import create_model


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def close(n: int, paper_m: float, *, digits: int = 2) -> bool:
    """Equal at the paper's rounding (``digits`` decimals of millions) or within 0.5 %."""
    return round(n / 1e6, digits) == paper_m or abs(n / (paper_m * 1e6) - 1) <= 0.005


def r164(nc: int, **kw):
    return create_model("resnet164", num_classes=nc, preact=False, **kw)


# (adaptor, adaptor_kw, CIFAR-10 count (M), CIFAR-100 count (M)); None = no published number.
PAPER_164 = [
    (None, {}, 1.70, 1.73),
    ("se", {}, 1.91, 1.93),
    ("eca", {}, 1.70, 1.73),
    ("srm", {}, 1.74, 1.76),
    ("cbam", {}, 1.92, 1.93),  # DIA Table 4 (StepNet Table 1: 1.94 on CIFAR-100)
    ("dia_lstm", {}, 1.92, 1.95),
    ("dia_lstm", {"reduction": 16}, None, 1.78),
    ("stepnet", {}, 1.75, 1.77),
]


@pytest.mark.parametrize(("adaptor", "kw", "c10", "c100"), PAPER_164)
def test_resnet164_with_adaptors_matches_papers(adaptor, kw, c10, c100):
    for nc, paper in ((10, c10), (100, c100)):
        if paper is None:
            continue
        n = count(r164(nc, adaptor=adaptor, adaptor_kw=kw))
        assert close(n, paper), (adaptor, nc, n, paper)


def test_resnet164_exact_and_preact():
    assert count(r164(10)) == 1_704_154  # bearpaw resnet.py, computed analytically
    assert count(r164(100)) == 1_727_284
    # pre-activation: no stem BN, BN-free projection, final BN: same rounding
    assert close(count(create_model("resnet164")), 1.70)
    assert close(count(create_model("resnet164", num_classes=100)), 1.73)


def test_iebn_adds_24224():
    plain = count(r164(100))
    assert count(r164(100, norm="iebn")) - plain == 24_224


def test_dia_lstm_extra_is_closed_form_and_depth_free():
    # two small_cells per stage: 2 (C·C/r + C/r + (C/r)·4C + 4C) with C = 64, 128, 256
    def extra(r: int) -> int:
        return sum(2 * (c * (c // r) + c // r + (c // r) * 4 * c + 4 * c) for c in (64, 128, 256))

    assert extra(4) == 218_848
    for depth in ("resnet83", "resnet164", "resnet245"):
        plain = count(create_model(depth, num_classes=100, preact=False))
        dia = count(create_model(depth, num_classes=100, preact=False, adaptor="dia_lstm"))
        assert dia - plain == extra(4), depth
    dia83 = count(create_model("resnet83", num_classes=100, preact=False, adaptor="dia_lstm"))
    assert close(dia83, 1.11)
    se83 = count(create_model("resnet83", num_classes=100, preact=False, adaptor="se"))
    assert close(se83, 0.99)  # DIA Table 11, SENet-83


def test_wrn_and_imagenet_counts():
    assert close(count(create_model("wrn52_4")), 12.05)  # DIA Table 4
    assert close(count(create_model("wrn52_4", num_classes=100)), 12.07)
    assert count(create_model("resnet18")) == 11_689_512  # torchvision
    assert count(create_model("resnet34")) == 21_797_672
    assert count(create_model("resnet50")) == 25_557_032


def test_odenet_mnist_about_208k():
    # torchdiffeq example: downsampling 131,968+256 … computed: 208,266
    assert count(create_model("odenet_mnist")) == 208_266
    assert count(create_model("rknet_mnist")) == 208_266
    assert count(create_model("rknn_mnist")) == 208_266 - 2 * 9 * 64  # no time channel


def test_rkcnn_r_222_k120():
    n = count(create_model("rkcnn-R-2_2_2", growth=(120, 120, 120)))
    assert round(n / 1e6, 3) == 1.932  # RKCNN Table 3, CIFAR-10
    n100 = count(create_model("rkcnn-R-2_2_2", growth=(120, 120, 120), num_classes=100))
    assert round(n100 / 1e6, 3) == 1.964
    e = count(create_model("rkcnn-E-2_2_2", growth=(120, 120, 120)))
    assert round(e / 1e6, 3) == 0.977


@pytest.mark.parametrize(
    ("name", "c10", "c100"),
    [
        ("resnet_cifar", 0.845, 0.878),
        ("rknn_cifar", 0.846, 0.879),
        ("rknet_cifar", 0.853, 0.885),
        ("odenet_cifar", 0.853, 0.885),
    ],
)
def test_transplanted_baselines_rkcnn_table3(name, c10, c100):
    assert round(count(create_model(name)) / 1e6, 3) == c10
    assert round(count(create_model(name, num_classes=100)) / 1e6, 3) == c100
