"""The one error helper: "`x` must …, but got x=…; did you mean …?".

Every name looked up from user input (a tableau, model, adaptor, dataset, recipe, option, YAML
key) fails through :func:`did_you_mean` / :func:`unknown_name`, so a typo always gets the same
shape of message: what was wrong, the closest valid name, and the valid names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "must", "unknown_name"]


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
