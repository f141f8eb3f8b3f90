"""ResNet families as stacks of compiled method steps: CIFAR (6n+2 / 9n+2), WRN, ImageNet, digits.

Every residual block is ``x_{t+1} = x_t + Δt ⊙ Φ(x_t)`` built by ``compile_step`` (see
:mod:`odeattn.models.blocks`): ``method`` picks the numerical method per stage, ``adaptor`` the
step-size adaptor Δt (attention; StepNet ICCV 2023 Eq. 7/12), ``placement`` which blocks use it
(LTH4SA), ``sharing="stage"`` one adaptor per stage shared by its blocks (DIA); ``adaptor`` given
per block (a list per stage of preset names, ``"none"`` = none) picks each block's adaptor.

Depths follow He et al. 2016: CIFAR basic ``depth = 6n + 2`` (resnet20/32/44/56/110), bottleneck
``depth = 9n + 2`` (resnet83/164/245/407/1001), three stages of widths 16/32/64 (bottleneck
output ×4) on a 16-channel 3x3 stem; WRN-d-k (Zagoruyko & Komodakis 2016) basic pre-act blocks,
``n = (d − 4)/6``, widths 16k/32k/64k; ImageNet resnet18/34/50 as torchvision (7x7 stem, max pool,
widths 64…512). CIFAR/WRN/digits default to pre-activation (He et al. 2016b, where ResNet-164
comes from; the equality tests compare against it), ImageNet to post-activation (torchvision).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from odeattn.adaptors import IEBatchNorm2d
from odeattn.models._adaptor_args import (
    adaptor_record,
    block_adaptors,
    is_per_block,
    per_block_names,
    resolve_sharing,
)
from odeattn.models._common import (
    Placement,
    format_placement,
    he_init_conv,
    method_names,
    parse_placement,
    stage_tuple,
)
from odeattn.models._registry import register_variant
from odeattn.models.blocks import (
    BasicBranch,
    BottleneckBranch,
    Norm,
    PostActivation,
    build_stage,
    projection,
)

__all__ = ["ResNet", "resnet"]


class ResNet(nn.Module):
    """stem -> layer1 … layerS (:class:`~odeattn.models.blocks.Stage`) -> head."""

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module], head: nn.Module, arch: dict):
        super().__init__()
        self.stem = stem
        for i, stage in enumerate(stages, start=1):
            self.add_module(f"layer{i}", stage)
        self.num_stages = len(stages)
        self.head = head
        self._arch = arch

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) -> (B, num_classes)
        x = self.stem(x)
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.head(x)

    def architecture(self) -> dict[str, Any]:
        """Plain dict; ``create_model(**arch)`` rebuilds this network."""
        return copy.deepcopy(self._arch)


class Head(nn.Module):
    """[BN-ReLU (pre-act)] -> global average pool -> Linear."""

    def __init__(self, channels: int, num_classes: int, *, preact: bool):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels) if preact else None
        self.fc = nn.Linear(channels, num_classes)
        if self.bn is not None:
            he_init_conv(self)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, num_classes)
        if self.bn is not None:
            x = self.bn(x).relu()
        return self.fc(x.mean((2, 3)))


def _stem(kind: str, cin: int, width: int, preact: bool, norm: Norm) -> nn.Module:
    if kind == "imagenet":  # conv7x7/2 - BN - ReLU - maxpool3x3/2 (also for pre-act)
        layers: list[nn.Module] = [
            nn.Conv2d(cin, width, 7, stride=2, padding=3, bias=False),
            norm(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
    else:  # CIFAR / digits: conv3x3 (+ BN-ReLU in post-act)
        layers = [nn.Conv2d(cin, width, 3, padding=1, bias=False)]
        if not preact:
            layers += [norm(width), nn.ReLU(inplace=True)]
    stem = nn.Sequential(*layers)
    he_init_conv(stem)
    return stem


def _branches(
    block: str, cin: int, width: int, n: int, stride: int, preact: bool, dropout: float, norm: Norm
):
    out = width * 4 if block == "bottleneck" else width
    branches, shortcuts = [], []
    for i in range(n):
        s, c = (stride, cin) if i == 0 else (1, out)
        if block == "bottleneck":
            branches.append(BottleneckBranch(c, width, s, preact=preact, norm=norm))
        else:
            branches.append(BasicBranch(c, width, s, preact=preact, dropout=dropout, norm=norm))
        shortcuts.append(projection(c, out, s, preact=preact) if (s != 1 or c != out) else None)
    return branches, shortcuts, out


def _norm(norm: str) -> Norm:
    if norm == "bn":
        return nn.BatchNorm2d
    if norm == "iebn":
        return IEBatchNorm2d
    raise ValueError(
        f"`norm` must be 'bn' or 'iebn' (IEBN in blocks and stem), but got norm={norm!r}"
    )


def _check_scalars(**values: Any) -> None:
    for what, value in values.items():
        if what == "dropout":
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"`dropout` must be in [0, 1), but got dropout={value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{what}` must be a positive int, but got {what}={value!r}")


def _mask(placement: Any, blocks: tuple[int, ...], adaptor: Any) -> list[list[bool]]:
    if is_per_block(adaptor):
        names = per_block_names(adaptor, blocks)
        if placement is not None:
            raise ValueError(
                f"`placement` must be None with a per-block `adaptor` (its 'none' entries are the "
                f"blocks without one), but got placement={placement!r}; drop placement"
            )
        return [[n != "none" for n in g] for g in names]
    mask = parse_placement(placement, blocks)
    if adaptor is None and placement is not None and any(any(m) for m in mask):
        raise ValueError(
            f"`placement` selects blocks for an adaptor, but adaptor=None; pass adaptor=… "
            f"(e.g. 'se') or drop placement={placement!r}"
        )
    return mask


def _stages(
    block: str, arch: dict[str, Any], norm: Norm, adaptors: list[list[Any]]
) -> tuple[list[nn.Module], int]:
    """The residual stages described by ``arch`` (stride 2 from the second), and their output width."""
    stages, cin, preact = [], arch["stem_width"], arch["preact"]
    for s, (width, n) in enumerate(zip(arch["widths"], arch["blocks"])):
        branches, shortcuts, cin = _branches(
            block, cin, width, n, 1 if s == 0 else 2, preact, arch["dropout"], norm
        )
        stage = build_stage(
            branches,
            shortcuts,
            cin,
            stage_id=s,
            method=arch["method"][s],
            adaptors=adaptors[s],
            adaptor_kw=arch["adaptor_kw"],
            sharing=arch["sharing"],
            post=None if preact else PostActivation,
        )
        stages.append(stage)
    return stages, cin


def resnet(
    *,
    name: str,
    block: str,
    stem: str,
    num_classes: int = 10,
    in_channels: int = 3,
    preact: bool = True,
    blocks: Sequence[int] = (18, 18, 18),
    widths: Sequence[int] = (16, 32, 64),
    stem_width: int = 16,
    dropout: float = 0.0,
    norm: str = "bn",
    method: Any = "euler",
    adaptor: Any = None,  # None, a preset name, a spec (dict), or per block: [["se", "none"], …]
    adaptor_kw: dict[str, Any] | None = None,
    placement: Placement = None,
    sharing: str | None = None,
) -> ResNet:
    """Generic residual network; the registered names fix ``name``, ``block``, ``stem``, defaults."""
    n_stages = len(tuple(widths))
    blocks_t = stage_tuple(blocks, n_stages, "blocks")
    widths_t = stage_tuple(widths, n_stages, "widths")
    _check_scalars(
        num_classes=num_classes, in_channels=in_channels, stem_width=stem_width, dropout=dropout
    )
    norm_cls = _norm(norm)
    mask = _mask(placement, blocks_t, adaptor)
    arch = {
        "name": name,
        "family": "resnet",
        "num_classes": num_classes,
        "in_channels": in_channels,
        "preact": bool(preact),
        "blocks": list(blocks_t),
        "widths": list(widths_t),
        "stem_width": stem_width,
        "dropout": float(dropout),
        "norm": norm,
        "method": method_names(method, n_stages),
        "adaptor": adaptor_record(adaptor),
        "adaptor_kw": dict(adaptor_kw or {}),
        "placement": None if adaptor is None or is_per_block(adaptor) else format_placement(mask),
        "sharing": resolve_sharing(adaptor, sharing),
    }
    stem_mod = _stem(stem, in_channels, stem_width, preact, norm_cls)
    stages, cin = _stages(block, arch, norm_cls, block_adaptors(adaptor, mask))
    return ResNet(stem_mod, stages, Head(cin, num_classes, preact=preact), arch)


def _variant(name: str, **fixed: Any) -> None:
    register_variant(resnet, name, family="resnet", hidden=("block", "stem"), **fixed)


for _d in (20, 32, 44, 56, 110):  # basic, depth 6n + 2
    _variant(f"resnet{_d}", block="basic", stem="cifar", blocks=((_d - 2) // 6,) * 3)
for _d in (83, 164, 245, 407, 1001):  # bottleneck, depth 9n + 2
    _variant(f"resnet{_d}", block="bottleneck", stem="cifar", blocks=((_d - 2) // 9,) * 3)
_variant(
    "wrn52_4", block="basic", stem="cifar", blocks=(8, 8, 8), widths=(64, 128, 256), dropout=0.3
)
_variant(
    "wrn28_10", block="basic", stem="cifar", blocks=(4, 4, 4), widths=(160, 320, 640), dropout=0.3
)
_IMAGENET = dict(
    stem="imagenet", num_classes=1000, preact=False, widths=(64, 128, 256, 512), stem_width=64
)
_variant("resnet18", block="basic", blocks=(2, 2, 2, 2), **_IMAGENET)
_variant("resnet34", block="basic", blocks=(3, 4, 6, 3), **_IMAGENET)
_variant("resnet50", block="bottleneck", blocks=(3, 4, 6, 3), **_IMAGENET)
_variant("digits_resnet", block="basic", stem="cifar", in_channels=1, blocks=(3, 3, 3))
_variant(
    "digits_resnet_bottleneck",
    block="bottleneck",
    stem="cifar",
    in_channels=1,
    blocks=(3, 3, 3),
    widths=(4, 8, 16),
)
