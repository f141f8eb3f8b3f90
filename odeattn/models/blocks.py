"""Residual branches Φ and the stage builder: every residual block is a compiled method step.

A residual block is one step of a numerical method, ``x_{t+1} = x_t + Δt ⊙ Φ(x_t)`` (StepNet
Eq. 7; Euler with Δt = 1 is the plain ResNet). This module holds the fields f (the residual
branches of He et al. 2016a/b: basic and bottleneck, pre- and post-activation) and
:func:`build_stage`, which turns a list of branches into ``MethodStep``s with
``odeattn.compile.compile_step`` — models never loop over method stages themselves.

Conventions (bearpaw ``pytorch-classification``, used by DIANet / IEBN / StepNet):
- pre-activation branch ``BN-ReLU-conv …``, projection shortcut = conv1x1 on the raw input;
- post-activation branch ``conv-BN-ReLU … conv-BN``, shortcut conv1x1 + BN, ReLU after the add
  (applied by :class:`PostActivation` outside the step: the recorded step is ``x_t + Δt ⊙ Φ``);
- the stride sits on the 3x3 conv; the adaptor sees the branch output (after the last BN in
  post-act, after conv3 in pre-act) — the group's placement "after bn3, before the addition";
- ``norm`` builds every BN inside a branch: ``nn.BatchNorm2d`` or IEBN (Liang et al. 2020, which
  replaces the block BNs and the stem BN, not the shortcut BN);
- the block with a projection shortcut (the transition block of a stage) is always Euler,
  because a multi-stage method needs x_t and Φ(x_t) of equal shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from odeattn.adaptors import bind, create_adaptor
from odeattn.compile import compile_step
from odeattn.models._common import he_init_conv

__all__ = [
    "BasicBranch",
    "BottleneckBranch",
    "PostActivation",
    "Stage",
    "build_stage",
    "projection",
]


Norm = Callable[[int], nn.Module]


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBranch(nn.Module):
    """Φ of a basic block, two 3x3 convs.

    pre-act: ``BN-ReLU-conv3x3(s)-BN-ReLU-[dropout]-conv3x3`` (WRN puts its dropout there);
    post-act: ``conv3x3(s)-BN-ReLU-[dropout]-conv3x3-BN`` (torchvision names conv1, bn1, …).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int = 1,
        *,
        preact: bool = True,
        dropout: float = 0.0,
        norm: Norm = nn.BatchNorm2d,
    ):
        super().__init__()
        self.preact = preact
        if preact:
            self.bn1 = norm(cin)
        self.conv1 = _conv3(cin, cout, stride)
        if not preact:
            self.bn1 = norm(cout)
        if preact:
            self.bn2 = norm(cout)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = _conv3(cout, cout)
        if not preact:
            self.bn2 = norm(cout)
        he_init_conv(self)

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, Cout, H/s, W/s)
        if self.preact:
            out = self.conv1(self.bn1(x).relu())
            return self.conv2(self.drop(self.bn2(out).relu()))
        out = self.bn1(self.conv1(x)).relu()
        return self.bn2(self.conv2(self.drop(out)))


class BottleneckBranch(nn.Module):
    """Φ of a bottleneck block: 1x1 (to ``planes``), 3x3 (stride), 1x1 (to ``expansion·planes``).

    pre-act: ``BN-ReLU-conv`` ×3; post-act: ``conv-BN-ReLU, conv-BN-ReLU, conv-BN``.
    """

    def __init__(
        self,
        cin: int,
        planes: int,
        stride: int = 1,
        *,
        preact: bool = True,
        expansion: int = 4,
        norm: Norm = nn.BatchNorm2d,
    ):
        super().__init__()
        self.preact = preact
        widths = [(cin, planes, 1), (planes, planes, 3), (planes, planes * expansion, 1)]
        for i, (a, b, k) in enumerate(widths, start=1):
            conv = _conv3(a, b, stride) if k == 3 else _conv1(a, b)
            if preact:
                setattr(self, f"bn{i}", norm(a))
                setattr(self, f"conv{i}", conv)
            else:
                setattr(self, f"conv{i}", conv)
                setattr(self, f"bn{i}", norm(b))
        he_init_conv(self)

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, 4·planes, H/s, W/s)
        if self.preact:
            out = self.conv1(self.bn1(x).relu())
            out = self.conv2(self.bn2(out).relu())
            return self.conv3(self.bn3(out).relu())
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out)).relu()
        return self.bn3(self.conv3(out))


def projection(cin: int, cout: int, stride: int, *, preact: bool) -> nn.Module:
    """Projection shortcut: conv1x1(stride) (pre-act) or conv1x1(stride) + BN (post-act)."""
    if preact:
        mod: nn.Module = _conv1(cin, cout, stride)
    else:
        mod = nn.Sequential(_conv1(cin, cout, stride), nn.BatchNorm2d(cout))
    he_init_conv(mod)
    return mod


class PostActivation(nn.Module):
    """Post-activation ResNet: ``ReLU(step(x))`` — the ReLU after the addition."""

    def __init__(self, step: nn.Module):
        super().__init__()
        self.step = step

    def forward(self, x: Tensor) -> Tensor:
        return self.step(x).relu()


class Stage(nn.Module):
    """One stage (a run of blocks at one resolution); holds the stage-shared adaptor, if any."""

    def __init__(self, blocks: Sequence[nn.Module], adaptor: nn.Module | None = None):
        super().__init__()
        if adaptor is not None:  # registered first: its parameters are named stage.adaptor.*
            self.adaptor = adaptor
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def build_stage(
    branches: Sequence[nn.Module],
    shortcuts: Sequence[nn.Module | None],
    channels: int,
    *,
    stage_id: int,
    method: str,
    adaptors: Sequence[Any],
    adaptor_kw: dict[str, Any],
    sharing: str,
    post: Callable[[nn.Module], nn.Module] | None = None,
) -> Stage:
    """Compile one stage: block ``i`` is ``compile_step(method, branches[i], step=Δt_i, shortcut=…)``.

    ``adaptors[i]`` is block i's adaptor (None: Δt = 1; LTH4SA placement, or one preset per
    block). With ``sharing="stage"`` one adaptor is built for the stage (all non-None entries
    must be the same), serving the selected blocks; it is bound to each with its rank among them,
    so recurrent state (DIA) resets at the first selected block. Blocks with a projection
    shortcut use Euler. ``post`` wraps each step (post-act ReLU).
    """
    used = [a for a in adaptors if a is not None]
    shared = None
    if sharing == "stage" and used:
        if any(a != used[0] for a in used):
            raise ValueError(
                f"stage {stage_id} mixes adaptors {used} with sharing='stage' (one module per "
                f"stage); give the stage one adaptor, or use sharing='block'"
            )
        shared = create_adaptor(used[0], channels, shared_blocks=len(used), **adaptor_kw)
    blocks, rank = [], 0
    for i, (branch, shortcut, adaptor) in enumerate(
        zip(branches, shortcuts, adaptors, strict=True)
    ):
        step = None
        if adaptor is not None:
            if shared is not None:
                step = bind(shared, rank)
            else:
                step = create_adaptor(adaptor, channels, **{"sharing": "block", **adaptor_kw})
            rank += 1
        m = "euler" if shortcut is not None else method
        block = compile_step(m, branch, step=step, shortcut=shortcut)
        block.set_position(stage_id, i)
        blocks.append(post(block) if post is not None else block)
    return Stage(blocks, shared)
