"""The inverse of ``decode`` for architecture parameters, and uniform draws of a space.

``decode(space, params)`` turns a trial's flat Optuna params into ``create_model`` kwargs;
:func:`encode` goes back: from the kwargs each ``model.<kw>`` parameter targets (``blocks``,
``placement``, ``adaptor``, ``method``, ``sharing`` …) to the flat params a trial of the space
stores, so that ``decode(space, encode(space, kw)).model`` gives ``kw`` again. Placements are
encoded per mode (see ``_space``): ``bits`` bit by bit; ``k_of_l`` as k and priorities 1 for
the blocks with attention, 0 for the others (the k highest are exactly those); ``density`` as a
density d per stage with round(d·n) = the stage's count, inside the declared range, when the
stage's mask is the evenly spaced one (else the mask is not in the space: ValueError); a
per-block adaptor (a list per stage of names) name by name.
Parameters inactive under their ``when`` are left out, as a trial leaves them out.

:func:`draw` samples a space with a ``torch.Generator`` (each active parameter uniform in its
range, log-uniform on a log scale), giving the same flat dict a trial stores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from odeattn.models import parse_placement
from odeattn.study._space import Space, _active, density_mask, sample, target_of
from odeattn.study.config import (
    CategoricalParam,
    PerBlockParam,
    PerStageParam,
    PlacementParam,
)

__all__ = ["draw", "encode"]


def encode(space: Space, model: Mapping[str, Any]) -> dict[str, Any]:
    """Flat params of ``space`` whose ``decode`` gives the ``create_model`` kwargs ``model``;
    ValueError for a value outside the space or a parameter that is no model kwarg."""
    flat: dict[str, Any] = {}
    values: dict[str, Any] = {}
    blocks = space.blocks
    for name in space.order:
        p = space.config.params[name]
        if not _active(p, values):
            continue
        tgt = target_of(name, p)
        kw = tgt.removeprefix("model.")
        if not tgt.startswith("model.") or "." in kw:
            raise ValueError(f"params.{name}: target {tgt!r} is not a model kwarg; cannot encode")
        if kw not in model:
            raise ValueError(f"params.{name}: no value for model kwarg {kw!r} in {dict(model)}")
        values[name] = _one(name, p, model[kw], blocks, flat)
        if tgt == "model.blocks":
            blocks = tuple(int(b) for b in values[name])
    return flat


def _outside(name: str, value: Any, allowed: Any) -> ValueError:
    return ValueError(f"params.{name}: {value!r} is not in the space (allowed: {allowed})")


def _allowed(p: PerStageParam) -> list[Any]:
    if p.choices is not None:
        return list(p.choices)
    assert p.low is not None and p.high is not None
    return list(range(p.low, p.high + 1, p.step))


def _one(name: str, p: Any, value: Any, blocks: tuple[int, ...], flat: dict[str, Any]) -> Any:
    if isinstance(p, CategoricalParam):
        if isinstance(value, list | tuple) and len(set(value)) == 1:
            value = value[0]  # one method for every stage, given per stage
        if value not in p.choices:
            raise _outside(name, value, p.choices)
        flat[name] = value
        return value
    if isinstance(p, PerStageParam):
        n, allowed = p.stages or len(blocks), _allowed(p)
        if not isinstance(value, list | tuple) or len(value) != n:
            raise ValueError(f"params.{name}: needs {n} values (one per stage), got {value!r}")
        for s, v in enumerate(value):
            if v not in allowed:
                raise _outside(f"{name}.s{s}", v, allowed)
            flat[f"{name}.s{s}"] = v
        return tuple(value)
    if isinstance(p, PerBlockParam):
        return _per_block(name, p, value, blocks, flat)
    if isinstance(p, PlacementParam):
        mask = [[bool(b) for b in m] for m in parse_placement(value, blocks)]
        _placement(name, p, mask, flat)
        return tuple(tuple(m) for m in mask)
    raise ValueError(f"params.{name}: a {p.type} parameter is not an architecture choice")


def _per_block(
    name: str, p: PerBlockParam, value: Any, blocks: tuple[int, ...], flat: dict[str, Any]
) -> tuple[list[Any], ...]:
    ok = isinstance(value, list | tuple) and len(value) == len(blocks)
    if not ok or any(not isinstance(g, list | tuple) or len(g) != n for g, n in zip(value, blocks)):
        raise ValueError(
            f"params.{name}: needs a list per stage of {list(blocks)} names, got {value!r}"
        )
    for s, group in enumerate(value):
        for b, v in enumerate(group):
            if v not in p.choices:
                raise _outside(f"{name}.s{s}.b{b}", v, p.choices)
            flat[f"{name}.s{s}.b{b}"] = v
    return tuple(list(g) for g in value)


def _placement(name: str, p: PlacementParam, mask: list[list[bool]], flat: dict) -> None:
    if p.mode == "bits":
        for s, m in enumerate(mask):
            for b, bit in enumerate(m):
                flat[f"{name}.s{s}.b{b}"] = int(bit)
    elif p.mode == "density":
        for s, m in enumerate(mask):
            flat[f"{name}.s{s}"] = _density(f"{name}.s{s}", m, p.density)
    else:
        bits = [b for m in mask for b in m]
        assert p.k is not None
        lo, hi = min(p.k[0], len(bits)), min(p.k[1], len(bits))
        if not lo <= sum(bits) <= hi:
            raise _outside(f"{name}.k", sum(bits), f"{lo}..{hi} blocks with attention")
        flat[f"{name}.k"] = sum(bits)
        for i, b in enumerate(bits):
            flat[f"{name}.r{i}"] = 1.0 if b else 0.0


def _density(key: str, mask: list[bool], bounds: tuple[float, float]) -> float:
    """A density in ``bounds`` that places exactly ``mask`` (ValueError if none does)."""
    n, k = len(mask), sum(mask)
    lo, hi = bounds
    for d in (k / n, (k - 0.49) / n, (k + 0.49) / n, lo, hi, (lo + hi) / 2):
        d = min(max(d, lo), hi)
        if density_mask(n, d) == [int(b) for b in mask]:
            return d
    raise _outside(key, "".join("1" if b else "0" for b in mask), f"density {lo}..{hi}")


class _DrawTrial:
    """An ``optuna.Trial`` look-alike whose ``suggest_*`` draw uniformly from a generator."""

    def __init__(self, generator: torch.Generator) -> None:
        self.gen = generator

    def _u(self) -> float:
        return float(torch.rand((), generator=self.gen, dtype=torch.float64))

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return choices[int(torch.randint(len(choices), (), generator=self.gen))]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        if log:
            v = math.exp(math.log(low) + self._u() * (math.log(high + 1) - math.log(low)))
            return min(high, int(v))
        return low + step * int(torch.randint((high - low) // step + 1, (), generator=self.gen))

    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float:
        if log:
            return math.exp(math.log(low) + self._u() * (math.log(high) - math.log(low)))
        if step is not None:
            return low + step * int(
                torch.randint(round((high - low) / step) + 1, (), generator=self.gen)
            )
        return low + self._u() * (high - low)


def draw(space: Space, generator: torch.Generator) -> dict[str, Any]:
    """One point of ``space``, every active parameter drawn uniformly: the flat trial params."""
    return sample(_DrawTrial(generator), space)
