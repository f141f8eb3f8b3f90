"""Butcher tableaux: exact Runge–Kutta coefficients, checked order, and the built-in library.

A residual block is one step of an s-stage Runge–Kutta method (RKCNN Eq. 2–3)

    k_i = f(t + c_i h, y + h Σ_j a_ij k_j),    y_1 = y + h Σ_i b_i k_i.

:class:`ButcherTableau` is the frozen value (exact ``Fraction``/surd entries or float64), checked
at construction against the rooted-tree order conditions (they hold at the declared order and
fail at the next one). ``TABLEAUS`` holds the built-in methods; :func:`get_tableau` looks one up.
This module imports without torch. Command line::

    python -m odeattn.tableau list | show NAME | verify NAME|--all | graph NAME [--dot]
"""

from __future__ import annotations

import difflib
from types import MappingProxyType

from odeattn._butcher import ButcherTableau
from odeattn._stability import StabilityFunction
from odeattn._tableau_data import build_tableaus

__all__ = ["TABLEAUS", "ButcherTableau", "StabilityFunction", "get_tableau", "unknown_name_error"]

TABLEAUS: MappingProxyType[str, ButcherTableau] = MappingProxyType(build_tableaus())


def unknown_name_error(kind: str, name: object, valid: list[str]) -> ValueError:
    """A ValueError for an unknown ``name`` that lists the valid names and the closest one."""
    close = difflib.get_close_matches(str(name).lower(), valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ValueError(f"unknown {kind} {name!r}{hint} Valid names: {', '.join(sorted(valid))}")


def get_tableau(name: str | ButcherTableau) -> ButcherTableau:
    """The built-in tableau called ``name`` (case-insensitive); a tableau passes through."""
    if isinstance(name, ButcherTableau):
        return name
    if isinstance(name, str):
        key = name.strip().lower().replace("-", "_")
        if key in TABLEAUS:
            return TABLEAUS[key]
    raise unknown_name_error("tableau", name, list(TABLEAUS))


if __name__ == "__main__":
    from odeattn._tableau_cli import main

    raise SystemExit(main())
