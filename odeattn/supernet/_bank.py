"""The supernet's weights, taken from networks that ``create_model`` builds, and copied back out.

No second model zoo: the stem, the residual branches Φ (fields f), the projection shortcuts and
the head come from ``create_model(name, **fixed, blocks=<largest depths>)``; each adaptor option
(× sharing) gets its per-block (or per-stage, DIA) adaptor modules (a per-block architecture
takes each block's from the bank of its preset) from
``create_model(..., adaptor=a, placement=<all blocks>, sharing=s)``. Everything else of those
networks is dropped. The layout of a ResNet this relies on (``layer{s}`` = ``Stage`` with
``blocks``, each a ``MethodStep`` or ``PostActivation(MethodStep)`` with ``fields[0]``,
``shortcut``, ``step``; a stage-shared adaptor is ``Stage.adaptor``) is read by :func:`core` and
:func:`stage`; :func:`copy_path` writes a bank's tensors into a stand-alone model of that layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from odeattn.models import create_model
from odeattn.models.blocks import PostActivation
from odeattn.supernet._slice import pair_tensors

__all__ = [
    "bank_key",
    "build_adaptors",
    "build_host",
    "copy_path",
    "core",
    "path_pairs",
    "stage",
]


def core(block: nn.Module) -> nn.Module:
    """The compiled step of a block (inside the post-activation ReLU wrapper, if any)."""
    return block.step if isinstance(block, PostActivation) else block


def stage(model: nn.Module, s: int) -> nn.Module:
    return getattr(model, f"layer{s + 1}")


def bank_key(label: str, sharing: str) -> str:
    return f"{label}__{sharing}"


def build_host(name: str, kwargs: Mapping[str, Any]) -> tuple[dict[str, nn.Module], bool]:
    """Stem, head, branches (per stage a ModuleList), shortcuts ("s_i" -> module); post-act?"""
    host = create_model(name, **kwargs)
    branches, shortcuts = nn.ModuleList(), nn.ModuleDict()
    for s in range(host.num_stages):
        blocks = [core(b) for b in stage(host, s).blocks]
        branches.append(nn.ModuleList(b.fields[0] for b in blocks))
        for i, b in enumerate(blocks):
            if b.shortcut is not None:
                shortcuts[f"{s}_{i}"] = b.shortcut
    post = isinstance(stage(host, 0).blocks[0], PostActivation)
    parts = {"stem": host.stem, "head": host.head, "branches": branches, "shortcuts": shortcuts}
    return parts, post


def build_adaptors(name: str, kwargs: Mapping[str, Any], sharing: str) -> nn.ModuleList:
    """Per stage: the stage-shared adaptor (``sharing="stage"``) or a ModuleList, one per block."""
    model = create_model(name, **kwargs, placement=None, sharing=sharing)
    out = nn.ModuleList()
    for s in range(model.num_stages):
        st = stage(model, s)
        if sharing == "stage":
            out.append(st.adaptor)
        else:
            out.append(nn.ModuleList(core(b).step for b in st.blocks))
    return out


def copy_path(model: nn.Module, pairs: Sequence[tuple[nn.Module, nn.Module, bool]]) -> None:
    """Load each ``(dst, src, partial)``: dst's tensors from src (``partial``: src may hold more,
    e.g. the per-block norms of a stage-shared adaptor serving more blocks), each the slice of
    src's tensor of dst's shape (:func:`~odeattn.supernet._slice.fit`: the leading channels of a
    narrower width; the whole tensor at the same width). Every tensor of ``model`` must be
    written, or a RuntimeError names the ones left."""
    written: set[int] = set()
    for dst, src, partial in pairs:
        tensors = pair_tensors(dst, src, partial)
        dst.load_state_dict({k: view.detach() for k, (_, view) in tensors.items()})
        written |= {id(t) for t, _ in tensors.values()}
    left = [k for k, t in model.state_dict(keep_vars=True).items() if id(t) not in written]
    if left:
        raise RuntimeError(f"the supernet does not hold these tensors of the model: {left}")


def path_pairs(
    model: nn.Module,
    parts: Mapping[str, Any],
    banks: Mapping[str, nn.ModuleList],
    keys: Sequence[Sequence[str | None]],
    sharing: str,
) -> list[tuple[nn.Module, nn.Module, bool]]:
    """The (stand-alone module, supernet module, partial) pairs of one architecture; ``keys``
    per stage, per block: the bank of the block's adaptor (None: Δt = 1)."""
    pairs = [(model.stem, parts["stem"], False), (model.head, parts["head"], False)]
    for s in range(model.num_stages):
        st = stage(model, s)
        used = [k for k in keys[s] if k is not None]
        if used and sharing == "stage" and hasattr(st, "adaptor"):
            pairs.append((st.adaptor, banks[used[0]][s], True))
        for i, block in enumerate(st.blocks):
            c = core(block)
            pairs.append((c.fields[0], parts["branches"][s][i], False))
            if c.shortcut is not None:
                pairs.append((c.shortcut, parts["shortcuts"][f"{s}_{i}"], False))
            key = keys[s][i]
            if key is not None and sharing == "block" and c.step is not None:
                pairs.append((c.step, banks[key][s][i], False))
    return pairs
