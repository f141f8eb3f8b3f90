"""The model registry: names -> factories, argument binding with "did you mean", name parsing.

Every factory is registered with :func:`register` under one or more names and takes keyword-only
arguments. :func:`create_model` binds the caller's keywords against the factory signature, so an
unknown or misspelt keyword is an error that names the closest valid one (never swallowed).
Names that carry arguments (``"rkcnn-R-3_4_4"``) are parsed by per-family parsers registered
with :func:`register_parser`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from odeattn._errors import did_you_mean

__all__ = [
    "MODELS",
    "ModelArgumentError",
    "create_model",
    "list_models",
    "register",
    "register_parser",
    "register_variant",
]

#: name -> factory. Each factory returns an ``nn.Module`` with an ``architecture()`` method.
MODELS: dict[str, Callable[..., nn.Module]] = {}
_FAMILY: dict[str, str] = {}
_PARSERS: list[Callable[[str], tuple[str, dict[str, Any]] | None]] = []


class ModelArgumentError(TypeError, ValueError):
    """A bad keyword for a model factory (both a TypeError and a ValueError)."""


def register(
    *names: str, family: str
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``factory`` under each of ``names`` (family recorded for ``list_models``)."""

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        for name in names:
            if name in MODELS:
                raise RuntimeError(f"model name {name!r} registered twice")
            MODELS[name] = factory
            _FAMILY[name] = family
        return factory

    return deco


def register_variant(
    base: Callable[..., nn.Module],
    name: str,
    *,
    family: str,
    hidden: tuple[str, ...] = (),
    **fixed: Any,
) -> Callable[..., nn.Module]:
    """Register ``base`` under ``name`` with some keywords fixed (``hidden``: not settable) and
    new defaults for the others; the factory's signature shows exactly the settable keywords."""
    sig = inspect.signature(base)
    missing = set(fixed) - set(sig.parameters)
    if missing:
        raise RuntimeError(f"{name}: {sorted(missing)} are not parameters of {base.__name__}")
    params = [
        p.replace(default=fixed[n]) if n in fixed else p
        for n, p in sig.parameters.items()
        if n not in hidden and n != "name"
    ]
    pinned = {k: v for k, v in fixed.items() if k in hidden}
    defaults = {k: v for k, v in fixed.items() if k not in hidden}

    def factory(**kw: Any) -> nn.Module:
        return base(name=name, **pinned, **{**defaults, **kw})

    factory.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"{name}: {base.__name__} with {fixed}.\n\n{base.__doc__ or ''}"
    return register(name, family=family)(factory)


def register_parser(parser: Callable[[str], tuple[str, dict[str, Any]] | None]) -> None:
    """Register ``parser(name) -> (registered_name, kwargs) | None`` for names carrying arguments."""
    _PARSERS.append(parser)


def list_models(family: str | None = None) -> list[str]:
    """Sorted registered model names, optionally only those of one ``family``."""
    if family is not None and family not in set(_FAMILY.values()):
        raise ValueError(_unknown("family", family, sorted(set(_FAMILY.values()))))
    return sorted(n for n in MODELS if family is None or _FAMILY[n] == family)


def model_family(name: str) -> str:
    return _FAMILY[name]


def _unknown(what: str, got: str, valid: list[str]) -> str:
    hint = did_you_mean(got, valid)
    return f"unknown {what} {got!r}{hint} Valid: {', '.join(valid)}"


def _resolve(name: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(name, str):
        raise ValueError(f"`name` must be a model name string, but got name={name!r}")
    key = name.strip()
    if key in MODELS:
        return key, {}
    for parser in _PARSERS:
        parsed = parser(key)
        if parsed is not None:
            return parsed
    raise ValueError(_unknown("model", name, sorted(MODELS)))


def _bind(name: str, factory: Callable[..., nn.Module], kwargs: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(factory).parameters
    valid = [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in kwargs:
        if key not in valid:
            hint = did_you_mean(key, valid).lstrip(";")
            raise ModelArgumentError(
                f"create_model({name!r}) got an unknown keyword {key!r}.{hint} "
                f"Valid keywords: {', '.join(valid)}"
            )
    return kwargs


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model: ``create_model("resnet164", num_classes=10, adaptor="se")``.

    ``create_model(**model.architecture())`` rebuilds the same network (same parameter names and
    count). A ``family`` key, as written by ``architecture()``, is checked and dropped.
    """
    key, parsed = _resolve(name)
    family = kwargs.pop("family", None)
    if family is not None and family != _FAMILY[key]:
        raise ValueError(
            f"`family` must match the model: {key!r} is a {_FAMILY[key]!r} model, "
            f"but got family={family!r}"
        )
    for k in set(parsed) & set(kwargs):
        if _norm(kwargs[k]) != _norm(parsed[k]):
            raise ValueError(f"{name!r} sets {k}={parsed[k]!r}, but got {k}={kwargs[k]!r} as well")
    factory = MODELS[key]
    bound = _bind(key, factory, {**parsed, **kwargs})
    return factory(**bound)
