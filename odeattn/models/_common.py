"""Shared argument handling of the residual families: placement masks, per-stage methods, init.

Placement (LTH4SA / EAN): one bit per residual block, ``1`` = the block uses the step-size
adaptor. Written as a per-stage ``list[list[bool]]`` (the structured form the search passes), a
flat ``list[bool]`` over all blocks in network order, or a string with one ``'|'``-separated
group per stage, first character = first block of the stage (``"110|0011|110010"``, EAN's DIA
scheme for ResNet-50's first three stages); ``architecture()`` records the string form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from odeattn._errors import did_you_mean
from odeattn.tableau import TABLEAUS, ButcherTableau

Placement = str | Sequence[bool] | Sequence[Sequence[bool]] | None

__all__ = [
    "Placement",
    "format_placement",
    "he_init_conv",
    "method_names",
    "parse_placement",
    "split_per_stage",
    "stage_tuple",
]


def stage_tuple(value: Any, n_stages: int, what: str, *, positive: bool = True) -> tuple[int, ...]:
    """Validate a per-stage tuple of ints (``blocks``, ``widths``, ``stages`` …)."""
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise ValueError(
            f"`{what}` must be a sequence of {n_stages} ints, one per stage, but got {what}={value!r}"
        ) from None
    if len(out) != n_stages or any(int(v) != v for v in value):
        raise ValueError(
            f"`{what}` must be {n_stages} ints, one per stage, but got {what}={value!r}"
        )
    if positive and any(v < 1 for v in out):
        raise ValueError(f"`{what}` must be positive, but got {what}={value!r}")
    return out


def split_per_stage(flat: Sequence[Any], blocks: Sequence[int]) -> list[list[Any]]:
    """A flat per-block sequence in network order -> one list per stage (``blocks[s]`` items)."""
    if len(flat) != sum(blocks):
        raise ValueError(f"need {sum(blocks)} items ({blocks} per stage), but got {len(flat)}")
    out, i = [], 0
    for n in blocks:
        out.append(list(flat[i : i + n]))
        i += n
    return out


def parse_placement(placement: Placement, blocks: Sequence[int]) -> list[list[bool]]:
    """Placement mask -> one list of bools per stage. ``None`` means every block.

    Forms: the string ``"110|0011"`` (or without ``'|'``), a flat sequence of bools / 0-1 over
    all blocks, or the structured per-stage form ``[[1, 1, 0], [0, 0, 1, 1]]`` (what the search
    passes: no string round trip)."""
    expected = "|".join(str(n) for n in blocks)
    if placement is None:
        return [[True] * n for n in blocks]
    groups: list[list[bool]] | None = None
    if isinstance(placement, str):
        text = placement.strip()
        if set(text) - set("01|"):
            raise ValueError(
                f"`placement` must use only '0', '1' and '|' (stage separator), "
                f"but got placement={placement!r}"
            )
        if "|" in text:
            groups = [[c == "1" for c in g] for g in text.split("|")]
        flat = [c == "1" for c in text.replace("|", "")]
    elif placement and all(isinstance(g, (list, tuple)) for g in placement):
        groups = [[_bit(b, placement) for b in g] for g in placement]
        flat = [b for g in groups for b in g]
    else:
        flat = [_bit(b, placement) for b in placement]
    if groups is not None and [len(g) for g in groups] != list(blocks):
        raise ValueError(
            f"`placement` must have one group per stage with {expected} blocks "
            f"(stages separated by '|'), but got placement={placement!r} with group "
            f"lengths {'|'.join(str(len(g)) for g in groups)}"
        )
    if len(flat) != sum(blocks):
        raise ValueError(
            f"`placement` must have {sum(blocks)} bits, one per block ({expected} blocks per "
            f"stage), but got {len(flat)} in placement={placement!r}"
        )
    return split_per_stage(flat, blocks)


def _bit(b: Any, placement: Any) -> bool:
    if b in (0, 1) or isinstance(b, bool):
        return bool(b)
    raise ValueError(f"`placement` entries must be bools or 0/1, but got {b!r} in {placement!r}")


def format_placement(mask: Sequence[Sequence[bool]]) -> str:
    """Canonical string form ``"110|0011|…"`` of a per-stage mask."""
    return "|".join("".join("1" if b else "0" for b in stage) for stage in mask)


def method_names(method: Any, n_stages: int) -> list[str]:
    """One method (tableau name) per stage; a single name or tableau applies to every stage."""
    if isinstance(method, (list, tuple)):
        if len(method) != n_stages:
            raise ValueError(
                f"`method` must be one name or {n_stages} names (one per stage), "
                f"but got method={method!r}"
            )
        return [_method_name(m) for m in method]
    return [_method_name(method)] * n_stages


def _method_name(m: Any) -> str:

    if isinstance(m, ButcherTableau):
        return m.name if m.name in TABLEAUS else _raise_custom(m)
    if not isinstance(m, str):
        raise ValueError(f"`method` must be a tableau name or ButcherTableau, but got method={m!r}")
    if m not in TABLEAUS:
        hint = did_you_mean(m, TABLEAUS)
        raise ValueError(f"unknown method {m!r}{hint} Valid: {', '.join(sorted(TABLEAUS))}")
    return m


def _raise_custom(m: Any) -> str:
    raise ValueError(
        f"`method` tableaux must be registered in odeattn.tableau.TABLEAUS so that "
        f"architecture() can name them, but got an unregistered tableau {m.name!r}"
    )


def he_init_conv(module: nn.Module) -> None:
    """Group convention (bearpaw / torchvision): conv ~ N(0, sqrt(2 / (k·k·out))), BN = (1, 0)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
