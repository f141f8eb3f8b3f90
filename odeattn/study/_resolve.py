"""Semantic checks of a study against the registries, before any storage is touched.

The schema (``odeattn.study.config._study``) checks shapes and types; this module checks names and sizes
against the real code: the model name (``MODELS``), tableau names (``TABLEAUS``), adaptor names
(``ADAPTORS``), the training recipe and its fields (``RECIPES``), the fixed placement mask
against the base model's blocks per stage, parameter targets and ``when`` references, the
sampler's keyword arguments and grid, the dataset's name and options. :func:`check_data` loads
the data itself (a real run calls it before creating the study; ``--dry-run`` may fall back to a
synthetic batch and says so). Each failure is a :class:`ConfigError` naming the file and
key. :func:`resolve_space` returns the :class:`Space` (the space plus the base model's blocks and
measured blocks per stage).
"""

from __future__ import annotations

import inspect
from typing import Any

import optuna

from odeattn.compile import Recordable
from odeattn.data import DATASETS
from odeattn.models import create_model, list_models
from odeattn.stiffness import measured_blocks
from odeattn.study._build import config_fields, data_for, train_config
from odeattn.study._params import (
    check_adaptor,
    check_methods,
    check_params,
    check_per_block,
    model_keywords,
)
from odeattn.study._space import Space, grid_space, target_of
from odeattn.study.config import ConfigError, StudyConfig, closest, load_search_space
from odeattn.study.samplers import ReinforceSampler
from odeattn.train import RECIPES

__all__ = ["check_data", "resolve_space", "sampler_class"]

_SAMPLERS = {
    "tpe": "TPESampler",
    "nsga2": "NSGAIISampler",
    "nsga3": "NSGAIIISampler",
    "gp": "GPSampler",
    "random": "RandomSampler",
    "grid": "GridSampler",
    "reinforce": ReinforceSampler,  # EAN's controller (study/samplers)
}
_EPOCH_METRICS = ("val_accuracy", "val_loss", "train_loss")


def sampler_class(name: str) -> Any:
    """The sampler class of ``sampler.name``: Optuna's (by name), or odeattn's own."""
    cls = _SAMPLERS[name]
    return getattr(optuna.samplers, cls) if isinstance(cls, str) else cls


def _check_model(study: StudyConfig) -> Any:
    """Build the base model once and return it. A registered model's keywords
    are checked against its factory's signature (the key is known, not read from a message);
    any other construction error is reported as it is, under ``model``."""
    f, m = study.file, study.model
    if "method" in m.kwargs:
        check_methods(f, "model.kwargs.method", m.kwargs["method"])
    if "adaptor" in m.kwargs:
        check_adaptor(f, "model.kwargs.adaptor", m.kwargs["adaptor"])
    valid = model_keywords(study)
    if valid is not None:
        for k in m.kwargs:
            if k not in valid:
                raise ConfigError(
                    f, f"model.kwargs.{k}", f"not an argument of {m.name!r}; {closest(k, valid)}"
                )
    mask = m.kwargs.get("placement")
    if isinstance(mask, str):  # checked against the blocks of the model built without it
        bare = _build_model(study, {k: v for k, v in m.kwargs.items() if k != "placement"})
        _check_mask(study, mask, _blocks_of(bare.architecture()))
    return _build_model(study, m.kwargs)


def _measured(model: Any) -> tuple[int, ...]:
    """Measured blocks per stage of the built base model, in stage order (stiffness's one count:
    a model default such as ResNet-164's 18 a stage as it is built); ``()`` without any."""
    if not any(isinstance(b, Recordable) for b in model.modules()):
        return ()
    return tuple(measured_blocks(model).values())


def _build_model(study: StudyConfig, kwargs: dict[str, Any]) -> Any:
    """``create_model`` or a ConfigError carrying the registry's own message: at ``model.name``
    for a name the registry does not list (parsed names carry their arguments), else at
    ``model.kwargs`` (a construction error is never turned into "unknown model")."""
    m = study.model
    try:
        return create_model(m.name, **{"num_classes": 10, **kwargs})
    except (TypeError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        key = "model.name" if m.name not in list_models() or not kwargs else "model.kwargs"
        raise ConfigError(study.file, key, f"create_model({m.name!r}, ...) failed: {msg}") from None


def _blocks_of(arch: dict[str, Any]) -> tuple[int, ...] | None:
    for key in ("blocks", "stages"):
        if key in arch:
            return tuple(int(b) for b in arch[key])
    return None


def _check_mask(study: StudyConfig, mask: str, blocks: tuple[int, ...] | None) -> None:
    groups = mask.split("|")
    if blocks is not None and [len(g) for g in groups] != list(blocks):
        want = "|".join("1" * n for n in blocks)
        raise ConfigError(
            study.file,
            "model.kwargs.placement",
            f"must have one group of bits per stage with {list(blocks)} bits, but got "
            f"placement={mask!r}; e.g. {want!r}",
        )


def _blocks(study: StudyConfig, cfg: Any, arch: dict[str, Any]) -> tuple[int, ...]:
    """Blocks (steps) per stage of the base model: ``architecture()["blocks"]`` (ResNets) or
    ``["stages"]`` (RKCNN); a space that places or sizes per stage needs one of them."""
    blocks = _blocks_of(arch)
    if blocks is not None:
        return blocks
    staged = [
        n
        for n, p in cfg.params.items()
        if getattr(p, "type", None) in ("placement", "per_stage")
        or target_of(n, p) == "model.blocks"
    ]
    if staged:
        raise ConfigError(
            study.file,
            "model.name",
            f"{study.model.name!r} declares no blocks per stage (architecture() has neither "
            f"`blocks` nor `stages`), so params {staged} cannot be sized; use a staged model",
        )
    return ()


def check_data(study: StudyConfig) -> Any:
    """Load the study's data (cached) or raise a one-line :class:`ConfigError` at ``data``."""
    try:
        return data_for(study)
    except (OSError, ValueError, TypeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(study.file, "data", f"cannot load the data: {first}") from None


def _check_data_names(study: StudyConfig) -> None:
    d = study.data
    if d.name not in DATASETS:
        raise ConfigError(
            study.file,
            "data.name",
            f"unknown dataset {d.name!r}; {closest(d.name, sorted(DATASETS))}",
        )
    opts = list(DATASETS[d.name].options)
    for k in d.kwargs:
        if k not in opts:
            raise ConfigError(
                study.file,
                f"data.kwargs.{k}",
                f"not an option of {d.name!r}; {closest(k, opts or ['<none>'])}",
            )


def _check_train(study: StudyConfig) -> list[str]:

    f = study.file
    if study.train.recipe not in RECIPES:
        raise ConfigError(
            f,
            "train.recipe",
            f"unknown recipe {study.train.recipe!r}; "
            f"{closest(study.train.recipe, sorted(RECIPES))}",
        )
    fields = config_fields(RECIPES[study.train.recipe])
    for k in study.train.overrides:
        if k not in fields:
            raise ConfigError(
                f,
                f"train.overrides.{k}",
                f"not a field of the training config; {closest(k, fields)}",
            )
    try:
        train_config(study)  # the values themselves: lr: .nan, batch_size: 0, … (TrainConfig)
    except (TypeError, ValueError) as e:
        raise ConfigError(f, "train", str(e).splitlines()[0]) from None
    return fields


def _check_run(study: StudyConfig, space: Space) -> None:

    f = study.file
    epochs = train_config(study).epochs  # the plan's one rule
    for i, o in enumerate(study.objectives):
        if isinstance(o.at, int) and o.at > epochs:
            raise ConfigError(
                f,
                f"objectives[{i}].at",
                f"training runs {epochs} epochs, but got at={o.at}; "
                f"use at <= {epochs}, init or end",
            )
    if study.pruning is not None and study.pruning.metric not in _EPOCH_METRICS:
        raise ConfigError(
            f,
            "pruning.metric",
            f"must be a per-epoch metric; {closest(study.pruning.metric, _EPOCH_METRICS)}",
        )
    if study.sampler.name == "grid":
        try:
            grid_space(space)
        except ValueError as e:
            raise ConfigError(space.file, str(e).split(":")[0], str(e).split(": ", 1)[1]) from None
    cls = sampler_class(study.sampler.name)
    valid = [k for k in inspect.signature(cls).parameters if k not in ("seed", "search_space")]
    for k in study.sampler.kwargs:
        if k not in valid:
            raise ConfigError(
                f, f"sampler.kwargs.{k}", f"not an argument of {cls.__name__}; {closest(k, valid)}"
            )
    if cls is ReinforceSampler:  # its values too (odeattn's own sampler checks them)
        try:
            cls(**study.sampler.kwargs)
        except (TypeError, ValueError) as e:
            raise ConfigError(f, "sampler.kwargs", str(e).splitlines()[0]) from None


def resolve_space(study: StudyConfig) -> Space:
    """Validate ``study`` against the registries and return its resolved :class:`Space`."""
    key = (study.file, study.model_dump_json())
    if key in _CACHE:
        return _CACHE[key]
    cfg = load_search_space(study)
    _check_data_names(study)
    model = _check_model(study)
    blocks = _blocks(study, cfg, model.architecture())
    fields = _check_train(study)
    space = Space(cfg, blocks, str(study.space_path), _measured(model))
    check_per_block(space, study.model.kwargs)  # first: its target, before another's choices
    check_params(space, fields, model_keywords(study))
    _check_run(study, space)
    _CACHE[key] = space
    return space


_CACHE: dict[tuple[str, str], Space] = {}
