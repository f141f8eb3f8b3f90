"""Define-by-run search spaces: a search-space file becomes Optuna ``suggest_*`` calls.

``sample(trial, space)`` walks the parameters of a :class:`Space` and asks the trial for each
active one, returning the flat dict of Optuna parameter names to values (exactly the entries of
``trial.params`` this walk created). ``decode(space, params)`` walks the same way over such a
flat dict (Ray hands the trainable ``trial.params``) and gives the logical values and where each
goes: ``model.<kw>``, ``model.adaptor.<field>`` (a composable adaptor spec), ``train.<key>``.

Flat names: scalar ``name``; per stage ``name.s<i>``; placement bits ``name.s<i>.b<j>``;
placement "k of L" ``name.k`` and priorities ``name.r<i>`` (the k highest get attention);
placement density ``name.s<i>`` (round(d·n) blocks, evenly spaced); an adaptor preset per block
``name.s<i>.b<j>`` (``type: per_block``; a list per stage of names). A parameter with ``when``
is active only when the named earlier parameters took one of the given values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from odeattn.models import split_per_stage
from odeattn.study.config import (
    CategoricalParam,
    FloatParam,
    IntParam,
    PerBlockParam,
    PerStageParam,
    PlacementParam,
    SearchSpaceConfig,
)

__all__ = ["Decoded", "Space", "decode", "density_mask", "grid_space", "sample"]


@dataclass(frozen=True)
class Space:
    """A search-space file resolved against the study's base model (stage and block counts)."""

    config: SearchSpaceConfig
    blocks: tuple[int, ...]  # blocks per stage of the base model
    file: str = ""
    # measured blocks per stage of the base model, as built (odeattn.stiffness.measured_blocks:
    # the first block of a stage is not measured); () when it has no recorded blocks
    measured: tuple[int, ...] = ()

    @property
    def order(self) -> list[str]:
        """Parameter names in sampling order: blocks-per-stage first, then file order."""
        names = list(self.config.params)
        return sorted(
            names, key=lambda n: 0 if target_of(n, self.config.params[n]) == "model.blocks" else 1
        )


@dataclass
class Decoded:
    values: dict[str, Any] = field(default_factory=dict)  # logical value per parameter
    model: dict[str, Any] = field(default_factory=dict)  # create_model keyword updates
    adaptor: dict[str, Any] = field(default_factory=dict)  # composable adaptor-spec fields
    train: dict[str, Any] = field(default_factory=dict)  # training-config overrides


def target_of(name: str, p: Any) -> str:
    return p.target or f"model.{name}"


class _Source(Protocol):
    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int: ...
    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float: ...
    def cat(self, name: str, choices: list[Any]) -> Any: ...


class _TrialSource:
    def __init__(self, trial: Any) -> None:
        self.trial, self.flat = trial, {}

    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        v = self.trial.suggest_int(name, low, high, step=step, log=log)
        self.flat[name] = v
        return v

    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float:
        v = self.trial.suggest_float(name, low, high, step=step, log=log)
        self.flat[name] = v
        return v

    def cat(self, name: str, choices: list[Any]) -> Any:
        v = self.trial.suggest_categorical(name, choices)
        self.flat[name] = v
        return v


class _DictSource:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def _get(self, name: str) -> Any:
        if name not in self.params:
            raise KeyError(
                f"parameter {name!r} is missing from the trial's params "
                f"(have {sorted(self.params)}); was it sampled from another space?"
            )
        return self.params[name]

    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        return int(self._get(name))

    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float:
        return float(self._get(name))

    def cat(self, name: str, choices: list[Any]) -> Any:
        return self._get(name)


def _active(p: Any, values: dict[str, Any]) -> bool:
    for key, want in (p.when or {}).items():
        if key not in values:
            return False
        allowed = want if isinstance(want, list) else [want]
        if values[key] not in allowed:
            return False
    return True


def density_mask(n: int, d: float) -> list[int]:
    """Density placement of one stage of ``n`` blocks: round(d·n) blocks, evenly spaced."""
    k = min(n, round(d * n))
    on = {math.floor((j + 0.5) * n / k) for j in range(k)} if k else set()
    return [int(b in on) for b in range(n)]


def _placement(
    name: str, p: PlacementParam, blocks: tuple[int, ...], src: _Source
) -> tuple[tuple[bool, ...], ...]:
    """The per-stage mask, structured (``create_model(placement=...)`` takes it as it is)."""
    if p.mode == "bits":
        masks = [
            [src.cat(f"{name}.s{s}.b{b}", [0, 1]) for b in range(n)] for s, n in enumerate(blocks)
        ]
    elif p.mode == "density":
        masks = []
        for s, n in enumerate(blocks):
            d = src.float(f"{name}.s{s}", p.density[0], p.density[1], None, False)
            masks.append(density_mask(n, d))
    else:
        total = sum(blocks)
        assert p.k is not None
        k = src.int(f"{name}.k", min(p.k[0], total), min(p.k[1], total), 1, False)
        prio = [src.float(f"{name}.r{i}", 0.0, 1.0, None, False) for i in range(total)]
        on = set(sorted(range(total), key=lambda i: (-prio[i], i))[:k])
        masks = split_per_stage([int(i in on) for i in range(total)], blocks)
    return tuple(tuple(bool(b) for b in m) for m in masks)


def _one(name: str, p: Any, blocks: tuple[int, ...], src: _Source) -> Any:
    if isinstance(p, FloatParam):
        return src.float(name, p.low, p.high, p.step, p.log)
    if isinstance(p, IntParam):
        return src.int(name, p.low, p.high, p.step, p.log)
    if isinstance(p, CategoricalParam):
        return src.cat(name, list(p.choices))
    if isinstance(p, PerStageParam):
        n = p.stages or len(blocks)
        if p.choices is not None:
            return tuple(src.cat(f"{name}.s{s}", list(p.choices)) for s in range(n))
        assert p.low is not None and p.high is not None
        return tuple(src.int(f"{name}.s{s}", p.low, p.high, p.step, False) for s in range(n))
    if isinstance(p, PerBlockParam):  # lists: create_model takes them as they are
        return tuple(
            [src.cat(f"{name}.s{s}.b{b}", list(p.choices)) for b in range(n)]
            for s, n in enumerate(blocks)
        )
    assert isinstance(p, PlacementParam)
    return _placement(name, p, blocks, src)


def _walk(space: Space, src: _Source) -> Decoded:
    out = Decoded()
    blocks = space.blocks
    for name in space.order:
        p = space.config.params[name]
        if not _active(p, out.values):
            continue
        v = _one(name, p, blocks, src)
        out.values[name] = v
        tgt = target_of(name, p)
        if tgt == "model.blocks":
            blocks = tuple(int(b) for b in v)
        if tgt.startswith("model.adaptor."):
            out.adaptor[tgt.removeprefix("model.adaptor.")] = v
        elif tgt.startswith("model."):
            out.model[tgt.removeprefix("model.")] = list(v) if isinstance(v, tuple) else v
        else:
            out.train[tgt.removeprefix("train.")] = v
    return out


def sample(trial: Any, space: Space) -> dict[str, Any]:
    """Define-by-run: ask ``trial`` (an ``optuna.Trial``) for every active parameter of ``space``.

    Returns the flat ``{optuna_name: value}`` dict this call suggested. No computation happens
    here, so it is safe as Ray's OptunaSearch define-by-run function.
    """
    src = _TrialSource(trial)
    _walk(space, src)
    return dict(src.flat)


def decode(space: Space, params: dict[str, Any]) -> Decoded:
    """Flat Optuna params (``trial.params`` or :func:`sample`'s result) → logical values + targets."""
    return _walk(space, _DictSource(params))


def grid_space(space: Space) -> dict[str, list[Any]]:
    """The flat grid for ``GridSampler``; ValueError naming the parameter that cannot be a grid."""
    grid: dict[str, list[Any]] = {}
    for name in space.order:
        p = space.config.params[name]
        if p.when:
            raise ValueError(
                f"params.{name}: the grid sampler cannot handle conditional "
                "parameters (`when`); use tpe or random"
            )
        if isinstance(p, FloatParam):
            if p.step is None:
                raise ValueError(f"params.{name}: a float needs `step` for the grid sampler")
            n = round((p.high - p.low) / p.step)
            grid[name] = [p.low + i * p.step for i in range(n + 1)]
        elif isinstance(p, IntParam):
            grid[name] = list(range(p.low, p.high + 1, p.step))
        elif isinstance(p, CategoricalParam):
            grid[name] = list(p.choices)
        elif isinstance(p, PerStageParam):
            if target_of(name, p) == "model.blocks":
                raise ValueError(
                    f"params.{name}: the grid sampler cannot search blocks per stage "
                    "(placement names change with it); use tpe or random"
                )
            vals = (
                list(p.choices) if p.choices is not None else list(range(p.low, p.high + 1, p.step))
            )  # type: ignore[arg-type]
            for s in range(p.stages or len(space.blocks)):
                grid[f"{name}.s{s}"] = vals
        elif isinstance(p, PerBlockParam):
            for s, n in enumerate(space.blocks):
                for b in range(n):
                    grid[f"{name}.s{s}.b{b}"] = list(p.choices)
        else:
            if p.mode != "bits":
                raise ValueError(f"params.{name}: the grid sampler needs placement mode: bits")
            for s, n in enumerate(space.blocks):
                for b in range(n):
                    grid[f"{name}.s{s}.b{b}"] = [0, 1]
    return grid
