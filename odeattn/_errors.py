"""The one error helper: "`x` must …, but got x=…; did you mean …?".

Every name looked up from user input (a tableau, model, adaptor, dataset, recipe, option, YAML
key) fails through :func:`did_you_mean` / :func:`unknown_name`, so a typo always gets the same
shape of message: what was wrong, the closest valid name, and the valid names. A lazy package
face (`lazy_attribute`) fails an unknown attribute the same way.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from typing import Any

__all__ = ["did_you_mean", "lazy_attribute", "must", "unknown_name"]


def did_you_mean(name: object, valid: Iterable[object], *, cutoff: float = 0.5) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``valid`` to ``name`` (case-insensitive), or ``""``."""
    options = [str(v) for v in valid]
    lowered = {o.lower(): o for o in options}
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=cutoff)
    return f"; did you mean {lowered[close[0]]!r}?" if close else ""


def unknown_name(kind: str, name: object, valid: Iterable[object], hint: str = "") -> ValueError:
    """``ValueError("unknown {kind} {name!r}; did you mean …? Valid names: …")``."""
    options = sorted(str(v) for v in valid)
    return ValueError(
        f"unknown {kind} {name!r}{did_you_mean(name, options)} Valid names: {', '.join(options)}."
        + (f" {hint.strip()}" if hint else "")
    )


def must(
    what: str, requirement: str, got: object, *, valid: Iterable[object] | None = None
) -> ValueError:
    """``ValueError("`what` must requirement, but got what=got; did you mean …?")``."""
    near = did_you_mean(got, valid) if valid is not None else ""
    return ValueError(f"`{what}` must {requirement}, but got {what}={got!r}{near}")


def lazy_attribute(package: str, table: dict[str, str], namespace: dict[str, Any]) -> Any:
    """A PEP 562 ``__getattr__`` for a lazy package face: ``table`` maps each public name to the
    module defining it, imported on first use and cached in ``namespace`` (the face's globals);
    an unknown name is an ``AttributeError`` with a did-you-mean."""

    def __getattr__(name: str) -> Any:
        try:
            module = table[name]
        except KeyError:
            hint = did_you_mean(name, sorted(table))
            raise AttributeError(f"module {package!r} has no attribute {name!r}{hint}") from None
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
