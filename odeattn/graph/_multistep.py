"""Linear multistep methods as method graphs: nodes that read earlier steps.

A linear multistep step (Hairer, Nørsett & Wanner I, Sec. III.1) is

    x_{n+1} = Σ_j α_j x_{n−j} + h Σ_j β_j f_{n−j}.

History nodes ``x@-j`` (state x_{n−j}) and ``f@-j`` (derivative f_{n−j} = f(t_{n−j}, x_{n−j}))
carry ``kind="history"`` and ``lag=j``; the stage ``k1`` is f_n = f(t_n, x_n). Schemes:

- ``"adams_bashforth"`` order p: α = (1), β_j = ∫_{t_n}^{t_{n+1}} ℓ_j(s) ds / h for the Lagrange
  basis ℓ_j on t_n … t_{n−p+1} (variable step: the weights follow the past step sizes;
  the edge weights are the uniform-step values, e.g. AB2 3/2, −1/2);
- ``"adams_pece"`` order p: Predict with AB_p (node ``pred``), Evaluate ``k2 = f(t_{n+1},
  pred)``, Correct with Adams–Moulton on t_{n+1}, t_n … t_{n−p+2}, (Evaluate at the next step);
- ``"lm"``: LM-ResNet (Lu et al., ICML 2018, Eq. 5): x_{n+1} = (1 − k_n) x_n + k_n x_{n−1}
  + f(x_n), one learnable k_n per step (α edges ``weight="learnable"``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import networkx as nx

from odeattn._errors import must, unknown_name

__all__ = ["MULTISTEP_SCHEMES", "adams_weights", "build_multistep"]

MULTISTEP_SCHEMES = ("adams_bashforth", "adams_pece", "lm")
MAX_ORDER = 6


def adams_weights(nodes: list[Any], a: Any, b: Any) -> list[Any]:
    """∫_a^b ℓ_j(s) ds for the Lagrange basis ℓ_j on ``nodes`` (exact for Fractions).

    Works on any field (Fraction, float): each ℓ_j is expanded into monomials and integrated.
    """
    out = []
    for j, tj in enumerate(nodes):
        poly = [tj - tj + 1]  # coefficients, lowest degree first
        for i, ti in enumerate(nodes):
            if i == j:
                continue
            scale = tj - ti
            poly = [
                ((poly[m - 1] if m > 0 else 0) - ti * (poly[m] if m < len(poly) else 0)) / scale
                for m in range(len(poly) + 1)
            ]
        out.append(sum(c * (b ** (m + 1) - a ** (m + 1)) / (m + 1) for m, c in enumerate(poly)))
    return out


def _uniform(lags: list[int]) -> list[Fraction]:
    """Adams weights for unit steps, nodes at −lag, integrated over [0, 1]."""
    return adams_weights([Fraction(-lag) for lag in lags], Fraction(0), Fraction(1))


def _check(scheme: str, order: int) -> None:
    if scheme not in MULTISTEP_SCHEMES:
        raise unknown_name("multistep scheme", scheme, MULTISTEP_SCHEMES)
    top = 1 if scheme == "lm" else MAX_ORDER
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= top:
        raise must("order", f"be an int in 1…{top} for scheme {scheme!r}", order)


def _derivs(g: nx.DiGraph, target: str, lags: list[int]) -> None:
    """Edges f_{n−lag} → target with the uniform-step Adams weights (lag −1 is ``k2``)."""
    for lag, w in zip(lags, _uniform(lags)):
        src = {0: "k1", -1: "k2"}.get(lag, f"f@-{lag}")
        if src not in g:
            g.add_node(src, kind="history", of="deriv", lag=lag)
        if w != 0:
            g.add_edge(src, target, weight=float(w), exact=str(w), lag=lag)


def build_multistep(scheme: str, order: int) -> nx.DiGraph:
    """The DiGraph of one multistep step (output node ``y``; ``dt`` added by the caller)."""
    _check(scheme, order)
    g = nx.DiGraph(name=f"{scheme}{order}" if scheme != "lm" else "lm", scheme=scheme, order=order)
    g.add_node("x", kind="input")
    g.add_node("k1", kind="stage", c=0.0, c_exact="0", field=0)
    g.add_edge("x", "k1", role="input")
    g.add_node("phi", kind="increment")
    if scheme == "lm":
        g.add_node("x@-1", kind="history", of="state", lag=1)
        g.add_edge("k1", "phi", weight=1.0, exact="1", lag=0)
        g.graph["alpha"] = {0: "1 - k", 1: "k"}
        return g
    g.graph["alpha"] = {0: "1"}
    if scheme == "adams_bashforth":
        _derivs(g, "phi", list(range(order)))
        return g
    g.add_node("pred", kind="predict")
    g.add_edge("x", "pred", role="residual")
    _derivs(g, "pred", list(range(order)))
    g.add_node("k2", kind="stage", c=1.0, c_exact="1", field=0)
    g.add_edge("pred", "k2", role="input")
    _derivs(g, "phi", list(range(-1, order - 1)))
    return g
