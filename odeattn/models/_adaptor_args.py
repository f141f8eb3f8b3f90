"""How the models read the ``adaptor`` / ``sharing`` arguments (see ``odeattn.adaptors``).

``adaptor`` is None, a preset name in ``ADAPTORS``, an ``AdaptorSpec`` or its dict form.
``architecture()`` records it as a YAML-safe value (name or plain dict). ``sharing=None`` takes
the adaptor's own sharing, read from its spec by :func:`odeattn.adaptors.default_sharing` for
every form (name, ``{"preset": "dia_lstm", ...}``, spec): "stage" for the DIA presets (one module
per stage), else the spec's field ("block" by default).
"""

from __future__ import annotations

from typing import Any

from odeattn.adaptors import default_sharing, resolve_spec

__all__ = ["adaptor_record", "effective_adaptor", "resolve_sharing"]

_SHARINGS = ("block", "stage")


def adaptor_record(adaptor: Any) -> Any:
    """YAML-safe form of the ``adaptor`` argument."""
    if adaptor is None or isinstance(adaptor, str):
        return adaptor
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
    if sharing is None:
        return default_sharing(adaptor)  # the spec's (a preset's) sharing: one source of truth
    if sharing not in _SHARINGS:
        raise ValueError(
            f"`sharing` must be one of {', '.join(map(repr, _SHARINGS))} (or None for the "
            f"adaptor's default), but got sharing={sharing!r}"
        )
    return sharing


def effective_adaptor(adaptor: Any) -> Any:
    """None when ``adaptor`` means Δt = 1 (None, "none", ``{"preset": "none"}``), else itself."""
    if adaptor is None:
        return None
    return None if resolve_spec(adaptor)[0] is None else adaptor
