"""``compile_step``: the one entry that turns a method into a residual block.

``method`` is a tableau name, a :class:`~odeattn.tableau.ButcherTableau` or a
:class:`~odeattn.graph.MethodGraph`; tableau graphs become :class:`MethodStep`
(``k_i = f_i(x_t + h Σ_j a_ij k_j)``, ``y = x_t + h Δt ⊙ Σ b_i k_i``), RKCNN graphs
:class:`RKCNNStep` (learned dense stages and update sweeps), multistep graphs :class:`MultistepStep` (history of
states and derivatives: Adams, PECE, LM-ResNet).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from odeattn.compile._multistep import MultistepStep
from odeattn.compile._rkcnn import RKCNNStep
from odeattn.compile._step import MethodStep
from odeattn.graph import GraphKind, MethodGraph
from odeattn.tableau import get_tableau

__all__ = ["compile_step"]


def compile_step(
    method: Any,
    fields: Any,
    *,
    step: Any = None,
    shortcut: nn.Module | None = None,
    h: float = 1.0,
    time_input: bool = False,
    combine: nn.Module | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Compile ``method`` (name | ``ButcherTableau`` | ``MethodGraph``) into a residual step.

    Extra keywords go to :class:`MethodStep` (``t0, rtol, atol, implicit, max_iter``); unknown
    ones raise ``TypeError``. ``combine`` is only for RKCNN graphs.
    """
    if isinstance(method, MethodGraph) and method.kind is GraphKind.MULTISTEP:
        if step is not None or combine is not None or time_input or h != 1.0:
            raise ValueError(
                "a multistep graph compiles to a unit-step MultistepStep: `step`, `combine`, "
                "`time_input` and `h` are not for it (its ODE steps take times in .step)"
            )
        return MultistepStep(method, fields, shortcut=shortcut, **kwargs)
    if isinstance(method, MethodGraph) and method.kind is GraphKind.RKCNN:
        return RKCNNStep(
            method, fields, combine=combine, step=step, shortcut=shortcut, h=h, **kwargs
        )
    if combine is not None:
        raise ValueError(
            "`combine` is only for RKCNN graphs (MethodGraph.rkcnn); a tableau "
            "combines its stages with b"
        )
    tab = method.tableau if isinstance(method, MethodGraph) else get_tableau(method)
    if isinstance(method, MethodGraph) and step is None and method.step is not None:
        if method.step in ("adaptor", "controller"):
            raise ValueError(
                f"the graph's step node is {method.step!r}: pass the module as "
                f"compile_step(..., step=<module called dt = step(x_t, phi)>)"
            )
        step = method.step
    return MethodStep(
        tab, fields, step=step, shortcut=shortcut, h=h, time_input=time_input, **kwargs
    )
