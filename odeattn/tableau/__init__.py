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

from odeattn._errors import unknown_name
from odeattn.tableau._butcher import ButcherTableau
from odeattn.tableau._data import build_tableaus
from odeattn.tableau._data_extra import DOP853_B3
from odeattn.tableau._exact import parse_entry
from odeattn.tableau._library import Library
from odeattn.tableau._stability import StabilityFunction

__all__ = [
    "DOP853_B3",
    "TABLEAUS",
    "ButcherTableau",
    "StabilityFunction",
    "get_tableau",
    "parse_entry",
]

TABLEAUS: Library = Library(build_tableaus)  # read-only; built and checked on first use


def get_tableau(name: str | ButcherTableau) -> ButcherTableau:
    """The built-in tableau called ``name`` (case-insensitive); a tableau passes through."""
    if isinstance(name, ButcherTableau):
        return name
    if isinstance(name, str):
        key = name.strip().lower().replace("-", "_")
        if key in TABLEAUS:
            return TABLEAUS[key]
    raise unknown_name("tableau", name, TABLEAUS)
