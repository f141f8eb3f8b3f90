"""How the models read the ``adaptor`` / ``sharing`` arguments (see ``odeattn.adaptors``).

``adaptor`` is None, a preset name in ``ADAPTORS``, an ``AdaptorSpec`` or its dict form.
``architecture()`` records it as a YAML-safe value (name or plain dict). ``sharing=None`` takes
the adaptor's own sharing, read from its spec by :func:`odeattn.adaptors.default_sharing` for
every form (name, ``{"preset": "dia_lstm", ...}``, spec): "stage" for the DIA presets (one module
per stage), else the spec's field ("block" by default).

Per block (the form a per-block supernet search passes): ``adaptor`` is one list per stage of
one preset name per block, ``"none"`` = no adaptor in that block (``[["se", "none"], ["eca",
"se"]]``). It replaces ``placement`` (which must stay None). ``sharing=None`` takes the presets'
common default sharing; with ``sharing="stage"`` (DIA: one module per stage) a stage may hold one
preset besides ``"none"`` (the blocks naming it share it), never two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from odeattn._errors import must, unknown_name
from odeattn.adaptors import ADAPTORS, default_sharing, resolve_spec

__all__ = [
    "adaptor_record",
    "block_adaptors",
    "effective_adaptor",
    "is_per_block",
    "per_block_names",
    "resolve_sharing",
]

_SHARINGS = ("block", "stage")


def is_per_block(adaptor: Any) -> bool:
    """Whether ``adaptor`` is the per-block form (a list per stage of preset names)."""
    return isinstance(adaptor, list | tuple)


def per_block_names(adaptor: Any, blocks: Sequence[int]) -> list[list[str]]:
    """The per-block form checked against ``blocks`` (blocks per stage): a list per stage of
    ``blocks[s]`` preset names in ``ADAPTORS``."""
    shape = "|".join(str(n) for n in blocks)
    req = f"be one list per stage of one preset name per block ({shape} blocks), e.g. "
    req += f"{[['se'] * n for n in blocks]!r} ('none' = no adaptor in that block)"
    if len(adaptor) != len(blocks) or any(not isinstance(g, list | tuple) for g in adaptor):
        raise must("adaptor", req, adaptor)
    for s, (group, n) in enumerate(zip(adaptor, blocks)):
        if len(group) != n:
            raise must("adaptor", f"{req}; stage {s} has {len(group)} names", adaptor)
        for i, name in enumerate(group):
            if not isinstance(name, str) or name not in ADAPTORS:
                raise unknown_name(
                    "adaptor", name, ADAPTORS, f"(adaptor[{s}][{i}]: stage {s}, block {i})"
                )
    return [list(g) for g in adaptor]


def block_adaptors(adaptor: Any, mask: Sequence[Sequence[bool]]) -> list[list[Any]]:
    """Per stage, per block: the adaptor value of the block, None where Δt = 1 (a bit 0 of the
    placement ``mask``, a ``"none"`` of the per-block form)."""
    if is_per_block(adaptor):
        return [[effective_adaptor(a) for a in group] for group in adaptor]
    one = effective_adaptor(adaptor)
    return [[one if bit else None for bit in stage] for stage in mask]


def adaptor_record(adaptor: Any) -> Any:
    """YAML-safe form of the ``adaptor`` argument."""
    if adaptor is None or isinstance(adaptor, str):
        return adaptor
    if is_per_block(adaptor):
        return [list(g) for g in adaptor]
    if isinstance(adaptor, dict):
        return _plain(adaptor)
    for attr in ("to_dict", "model_dump", "as_dict"):
        fn = getattr(adaptor, attr, None)
        if callable(fn):
            return _plain(fn())
    raise ValueError(
        f"`adaptor` must be None, a preset name, an AdaptorSpec or a dict, but got {adaptor!r}"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def resolve_sharing(adaptor: Any, sharing: str | None) -> str:
    """The effective sharing mode ("block" or "stage")."""
    if sharing is None and is_per_block(adaptor):
        return _common_sharing(adaptor)
    if sharing is None:
        return default_sharing(adaptor)  # the spec's (a preset's) sharing: one source of truth
    if sharing not in _SHARINGS:
        raise ValueError(
            f"`sharing` must be one of {', '.join(map(repr, _SHARINGS))} (or None for the "
            f"adaptor's default), but got sharing={sharing!r}"
        )
    if sharing == "stage" and is_per_block(adaptor):
        for s, group in enumerate(adaptor):
            used = sorted({a for a in group if effective_adaptor(a) is not None})
            if len(used) > 1:
                raise must(
                    f"adaptor[{s}]",
                    f"name one preset besides 'none' with sharing='stage' (DIA shares one module "
                    f"per stage, but stage {s} mixes {used}); use one preset per stage or "
                    f"sharing='block'",
                    list(group),
                )
    return sharing


def _common_sharing(adaptor: Sequence[Sequence[str]]) -> str:
    found = {default_sharing(a) for g in adaptor for a in g if effective_adaptor(a) is not None}
    if len(found) > 1:
        raise must(
            "sharing",
            "be given ('block' or 'stage') when the per-block presets default to different "
            "sharings (the DIA presets share per stage, the others per block)",
            None,
        )
    return found.pop() if found else "block"


def effective_adaptor(adaptor: Any) -> Any:
    """None when ``adaptor`` means Δt = 1 (None, "none", ``{"preset": "none"}``), else itself."""
    if adaptor is None:
        return None
    return None if resolve_spec(adaptor)[0] is None else adaptor
