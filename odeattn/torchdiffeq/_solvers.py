"""torchdiffeq's method names mapped onto odeattn's solvers and tableaux.

``SOLVERS[name] = (kind, argument, valid callbacks)``: ``"rk"`` adaptive embedded pairs
(``odeattn.torchdiffeq._rk``), ``"fixed"`` fixed-grid tableaux, ``"adams"`` (argument: implicit?),
``"scipy"``. torchdiffeq's ``rk4`` is the 3/8 rule (``rk38`` here), ``heun2`` is ``heun``,
``implicit_euler`` is ``backward_euler``, ``gl4``/``gl6`` are Gauss–Legendre, ``radauIIA3/5``
Radau IIA.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from odeattn.tableau import TABLEAUS
from odeattn.torchdiffeq._fixed import Adams, FixedGrid, ScipySolver
from odeattn.torchdiffeq._rk import AdaptiveRK

__all__ = ["SOLVERS", "make_solver"]

_ALL = frozenset(("callback_step", "callback_accept_step", "callback_reject_step"))
_STEP = frozenset(("callback_step",))
_NONE: frozenset = frozenset()

SOLVERS: dict[str, tuple[str, Any, frozenset]] = {
    **{
        n: ("rk", n, _ALL)
        for n in ("dopri8", "dopri5", "tsit5", "bosh3", "fehlberg2", "adaptive_heun")
    },
    **{
        n: ("fixed", tab, _STEP)
        for n, tab in (
            ("euler", "euler"),
            ("midpoint", "midpoint"),
            ("heun2", "heun"),
            ("heun3", "heun3"),
            ("rk4", "rk38"),
        )
    },
    "explicit_adams": ("adams", False, _STEP),
    "implicit_adams": ("adams", True, _STEP),
    **{
        n: ("fixed", tab, _STEP)
        for n, tab in (
            ("implicit_euler", "backward_euler"),
            ("implicit_midpoint", "implicit_midpoint"),
            ("trapezoid", "trapezoid"),
            ("radauIIA3", "radau_iia3"),
            ("gl4", "gauss_legendre4"),
            ("radauIIA5", "radau_iia5"),
            ("gl6", "gauss_legendre6"),
            ("sdirk2", "sdirk2"),
            ("trbdf2", "trbdf2"),
        )
    },
    "fixed_adams": ("adams", True, _STEP),
    "scipy_solver": ("scipy", None, _NONE),
}


def make_solver(method: str, func: Any, y0: Tensor, rtol: Any, atol: Any, options: dict) -> Any:
    """The solver object for ``method`` (``integrate(t)``, ``integrate_until_event``)."""
    kind, arg, _ = SOLVERS[method]
    if kind == "rk":
        return AdaptiveRK(func, y0, rtol, atol, tableau=TABLEAUS[arg], **options)
    if kind == "scipy":
        return ScipySolver(func, y0, rtol, atol, **options)
    options = {k: v for k, v in options.items() if k != "norm"}
    if kind == "adams":
        return Adams(func, y0, rtol, atol, implicit=arg, **options)
    return FixedGrid(func, y0, rtol, atol, tableau=TABLEAUS[arg], **options)
