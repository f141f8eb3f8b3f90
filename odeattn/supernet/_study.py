"""A supernet built from a study file, speaking the study's parameters (``from_study``).

A study's search space names Optuna parameters (``placement.s0.b1``, ``method.s2``,
``adaptor``, ``adaptor.s0.b1`` per block, ``widths.s1``); a supernet switches ``create_model``
kwargs (``placement``, ``method``, ``adaptor``, ``blocks``, ``widths``, ``sharing``).
:func:`study_choices` maps the first onto :class:`Choices` — each parameter's target
``model.<kw>`` is one supernet dimension, its choices the dimension's options — and refuses, as a
one-line :class:`ConfigError` at validation, what one set of weights cannot serve: the stem's
width and other shapes, another model family, adaptor structure fields, training settings (a
supernet score does not train, so it cannot tell an ``lr`` apart). :class:`StudyMap` converts both ways: ``to_arch(params)`` through the study's
``decode``, ``to_params(arch)`` through its inverse ``encode``; ``draw(generator)`` samples the
study's space uniformly, giving the flat dict a trial of the study stores. A supernet made by
:func:`from_study` draws its training paths that way and takes either form wherever it takes an
architecture: a dict whose keys are exactly the searched kwargs is an architecture, any other
is a study's params dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from odeattn.study import (
    SHAPES,
    ConfigError,
    Space,
    StudyConfig,
    check_data,
    decode,
    draw,
    encode,
    load_study,
    resolve_space,
    supernet_settings,
    target_of,
)
from odeattn.supernet._choices import UNSHAREABLE, Choices
from odeattn.supernet._space import ArchSpace, _check_model
from odeattn.supernet._supernet import Supernet

__all__ = ["DIMENSIONS", "StudyMap", "from_study", "study_choices"]

#: create_model kwarg -> (Choices field, the parameter types that may search it)
DIMENSIONS = {
    "placement": ("placement", ("placement",)),
    "adaptor": ("adaptors", ("categorical", "per_block")),
    "method": ("methods", ("categorical", "per_stage")),
    "blocks": ("depths", ("per_stage",)),
    "widths": ("widths", ("per_stage",)),
    "sharing": ("sharing", ("categorical",)),
}
_SCRATCH = "use a train-from-scratch search (strategy: scratch)"


@dataclass(frozen=True)
class StudyMap:
    """Flat study params ↔ supernet architectures for one study space."""

    space: Space
    searched: tuple[str, ...]  # the supernet's architecture keys
    inactive: Mapping[str, Any]  # value of a dimension whose parameter a `when` switched off
    per_block: str | None = None  # adaptor per block: the preset of every block when inactive

    def is_params(self, x: Mapping[str, Any]) -> bool:
        return set(x) != set(self.searched)

    def to_arch(self, params: Mapping[str, Any]) -> dict[str, Any]:
        model = decode(self.space, dict(params)).model
        arch = {k: model.get(k, self.inactive[k]) for k in self.searched}
        if self.per_block is not None and "adaptor" not in model:
            blocks = model.get("blocks", self.inactive["blocks"])
            arch["adaptor"] = [[self.per_block] * int(n) for n in blocks]
        return arch

    def to_params(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        return encode(self.space, arch)

    def draw(self, generator: torch.Generator) -> dict[str, Any]:
        return draw(self.space, generator)


def _dimension(study: StudyConfig, space: Space, name: str, p: Any) -> str:
    """The supernet dimension (create_model kwarg) parameter ``name`` searches, or ConfigError."""
    tgt, key = target_of(name, p), f"params.{name}"
    kw = tgt.removeprefix("model.")

    def refuse(why: str) -> ConfigError:
        return ConfigError(space.file, key, f"{why}; {_SCRATCH}")

    if tgt.startswith("train."):
        raise refuse(f"{tgt!r} is a training setting: a supernet score does not train")
    if kw.startswith("adaptor."):
        raise refuse("adaptor structure fields change the adaptor's weights (a supernet "
                     "switches adaptor presets: a categorical or per_block `adaptor`)")  # fmt: skip
    if kw in UNSHAREABLE:
        raise refuse(f"`{kw}` cannot be a supernet dimension: it {UNSHAREABLE[kw]}")
    if kw not in DIMENSIONS:
        raise refuse(f"`{kw}` is not a supernet dimension ({', '.join(DIMENSIONS)})")
    if p.type not in DIMENSIONS[kw][1]:
        raise refuse(f"a supernet searches `{kw}` as type {' or '.join(DIMENSIONS[kw][1])}")
    if name in DIMENSIONS and name != kw:  # names and kwargs must not cross (is_params)
        raise ConfigError(space.file, key, f"targets {tgt!r}; rename it (not {name!r})")
    return kw


def _options(kw: str, p: Any, n_stages: int) -> Any:
    if kw == "placement":
        return True
    if kw in ("blocks", "widths"):
        allowed = p.choices if p.choices is not None else range(p.low, p.high + 1, p.step)
        return (tuple(allowed),) * n_stages
    return tuple(p.choices)


def _fixed(study: StudyConfig, searched: set[str]) -> dict[str, Any]:
    fixed = {k: v for k, v in study.model.kwargs.items() if k not in searched}
    if "num_classes" not in fixed:
        known = SHAPES.get(study.data.name)
        fixed["num_classes"] = known[1] if known else check_data(study).num_classes
    return fixed


def study_choices(study: StudyConfig, space: Space) -> tuple[dict[str, Any], Choices, StudyMap]:
    """(fixed kwargs, Choices, StudyMap) of the study's space; ConfigError for what a supernet
    cannot share. Nothing is built (the weights are made by :class:`Supernet`)."""
    try:
        _check_model(study.model.name)
    except ValueError as e:
        msg = str(e).splitlines()[0]
        msg += " (strategy: scratch)" if msg.endswith("search") else f"; {_SCRATCH}"
        raise ConfigError(study.file, "model.name", msg) from None
    dims: dict[str, Any] = {}
    for name in space.order:
        p = space.config.params[name]
        kw = _dimension(study, space, name, p)
        opts = _options(kw, p, len(space.blocks))
        if kw == "method" and kw in dims:
            opts = tuple(dict.fromkeys([*dims[kw], *opts]))
        if p.type == "per_block":
            dims["adaptor_per_block"] = True
        try:
            Choices(**{DIMENSIONS[kw][0]: opts})  # one dimension: the error names the parameter
        except ValueError as e:
            why = str(e).split(" Valid names")[0]
            raise ConfigError(space.file, f"params.{name}", f"{why}; {_SCRATCH}") from None
        dims[kw] = opts
    fixed = _fixed(study, set(dims) & set(DIMENSIONS))
    try:
        choices = Choices(**{DIMENSIONS.get(kw, (kw,))[0]: v for kw, v in dims.items()})
        arch_space = ArchSpace.build(study.model.name, fixed, choices)
    except ValueError as e:
        key = "model.name" if "family" in str(e) or "unknown model" in str(e) else "model.kwargs"
        raise ConfigError(study.file, key, f"{str(e).splitlines()[0]}; {_SCRATCH}") from None
    inactive = {
        "placement": None,
        "adaptor": None if choices.adaptor_per_block else arch_space.adaptors[0],
        "method": [(choices.methods or ("euler",))[0]] * arch_space.n_stages,
        "blocks": list(arch_space.blocks),
        "widths": list(arch_space.widths),
        "sharing": (choices.sharing or (None,))[0],
    }
    first = arch_space.adaptors[0] if choices.adaptor_per_block else None
    return fixed, choices, StudyMap(space, choices.searched, inactive, first)


def from_study(study: str | Path | StudyConfig) -> Supernet:
    """The supernet of a study file (or a loaded :class:`StudyConfig`): its model, fixed kwargs
    and search space, ``supernet.sandwich`` / ``sandwich_paths`` / ``seed``; ``sample`` gives the
    flat params a trial of the study stores; its initial weights are drawn with ``supernet.seed``.
    ConfigError (exit 2) for a space it cannot share."""
    cfg = study if isinstance(study, StudyConfig) else load_study(study)
    fixed, choices, smap = study_choices(cfg, resolve_space(cfg))
    s = supernet_settings(cfg)
    sandwich = s.sandwich_paths if s.sandwich else None
    with torch.random.fork_rng(devices=[]):  # the same initial weights every time
        torch.manual_seed(s.seed)
        net = Supernet(cfg.model.name, fixed, choices=choices, sandwich=sandwich, seed=s.seed)
    net.study_map = smap
    return net
