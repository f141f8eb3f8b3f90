"""Checks of a search space's parameters against the registries: targets, methods, adaptors.

A ``model.<kw>`` target must be a keyword of the model factory, a method a tableau or multistep
scheme, an adaptor a registered one, a per-stage size the model's stage count, a ``when``
reference an earlier parameter — each found at validation, before any storage exists, as one
:class:`ConfigError` naming the file and key.
"""

from __future__ import annotations

import inspect
from typing import Any

from odeattn.adaptors import ADAPTORS, default_sharing
from odeattn.models import MODELS, MULTISTEP_METHODS
from odeattn.study._space import Space, target_of
from odeattn.study.config import ConfigError, StudyConfig, closest
from odeattn.tableau import TABLEAUS

__all__ = ["check_adaptor", "check_methods", "check_params", "check_per_block", "model_keywords"]


def _names(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_methods(file: str, key: str, value: Any) -> None:

    for i, m in enumerate(_names(value)):
        valid = {*TABLEAUS, *MULTISTEP_METHODS}  # multistep: LM-ResNet family (lm_resnet)
        if isinstance(m, str) and m not in valid:
            k = f"{key}[{i}]" if isinstance(value, (list, tuple)) else key
            raise ConfigError(file, k, f"unknown method {m!r}; {closest(m, sorted(valid))}")


def check_adaptor(file: str, key: str, value: Any) -> None:

    if isinstance(value, str) and value not in ADAPTORS:
        raise ConfigError(
            file, key, f"unknown adaptor {value!r}; {closest(value, sorted(ADAPTORS))}"
        )


def model_keywords(study: StudyConfig) -> list[str] | None:
    """The keyword arguments of the study's registered model factory (``None``: not known)."""
    if study.model.name not in MODELS:
        return None
    params = inspect.signature(MODELS[study.model.name]).parameters
    return [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]


def _check_target(space: Space, name: str, tgt: str, keywords: list[str] | None) -> None:
    """A ``model.<kw>`` target must be an argument of the model (found now, not in trial 1)."""
    kw = tgt.split(".")[1] if tgt.startswith("model.") else None
    if kw is not None and keywords is not None and kw not in keywords:
        key = f"params.{name}.target" if space.config.params[name].target else f"params.{name}"
        raise ConfigError(
            space.file, key, f"{kw!r} is not an argument of the model; {closest(kw, keywords)}"
        )


def check_params(space: Space, train_fields: list[str], keywords: list[str] | None) -> None:
    """Every parameter of the space: its target, sizes, choices and ``when`` references."""
    f, params = space.file, space.config.params
    seen: list[str] = []
    for name in space.order:
        p = params[name]
        tgt = target_of(name, p)
        _check_target(space, name, tgt, keywords)
        if not tgt.startswith(("model.", "train.")):
            raise ConfigError(
                f, f"params.{name}.target", f"must start with model. or train., but got {tgt!r}"
            )
        if tgt.startswith("train.") and tgt[6:] not in train_fields:
            raise ConfigError(
                f,
                f"params.{name}.target",
                f"{tgt[6:]!r} is not a training-config field; {closest(tgt[6:], train_fields)}",
            )
        n_stages = getattr(p, "stages", None)
        if (
            n_stages is not None
            and tgt in ("model.blocks", "model.method")
            and n_stages != len(space.blocks)
        ):
            raise ConfigError(
                f,
                f"params.{name}.stages",
                f"the model has {len(space.blocks)} stages, "
                f"but got stages={n_stages}; remove `stages` or set it to {len(space.blocks)}",
            )
        choices = getattr(p, "choices", None) or []
        for i, c in enumerate(choices):
            if tgt == "model.method":
                check_methods(f, f"params.{name}.choices[{i}]", c)
            if tgt == "model.adaptor":
                check_adaptor(f, f"params.{name}.choices[{i}]", c)
        for k in p.when or {}:
            if k not in seen:
                raise ConfigError(
                    f,
                    f"params.{name}.when.{k}",
                    f"must name a parameter declared "
                    f"before {name!r}; {closest(k, seen or ['<none>'])}",
                )
        seen.append(name)


def check_per_block(space: Space, kwargs: dict[str, Any]) -> None:
    """A ``per_block`` parameter targets ``model.adaptor`` and must build for every draw: no
    fixed placement, and one sharing for all its presets (``sharing: stage`` would get two presets in a stage)."""
    for name, p in space.config.params.items():
        if p.type != "per_block":
            continue
        tgt = target_of(name, p)
        if tgt != "model.adaptor":
            raise ConfigError(
                space.file,
                f"params.{name}",
                f"type per_block picks an adaptor preset per block, so it must target "
                f"model.adaptor, but got {tgt!r}; name it `adaptor` or set target: model.adaptor",
            )
        found = {default_sharing(c) for c in p.choices if c != "none" and c in ADAPTORS}
        sharing = kwargs.get("sharing")
        why = None
        if kwargs.get("placement") is not None:
            why = "replaces placement ('none' = no adaptor); remove model.kwargs.placement"
        elif len(set(p.choices) - {"none"}) > 1 and (
            sharing == "stage" or (sharing is None and found == {"stage"})
        ):
            why = "draws presets block by block, but sharing 'stage' (DIA) allows one per stage; "
            why += "set model.kwargs.sharing: block"
        elif sharing is None and len(found) > 1:
            why = "mixes presets shared per stage (DIA) and per block; set model.kwargs.sharing: block"
        if why is not None:
            raise ConfigError(space.file, f"params.{name}", f"an adaptor per block {why}")
