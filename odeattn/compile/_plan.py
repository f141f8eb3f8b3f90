"""The explicit stage kernel: constant coefficients baked in as Python floats.

A :class:`Plan` is read once per tableau off its :class:`~odeattn.graph.MethodGraph` (the
graph is the single truth; cached): for every stage the list of ``(j, a_ij)`` with a_ij ≠ 0
(zero terms are skipped), the nodes c_i, and the non-zero weights of b and b_err.
The kernel functions below are straight-line tensor code over that plan — a static Python loop
over the stages, no data-dependent control flow — so ``torch._dynamo`` traces them without
graph breaks. Linear combinations use fused ops: ``addcmul(y, k, h, value=a)`` for one term
(y + a·k·h) and ``add(acc, k, alpha=a)`` to accumulate several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from odeattn.graph import MethodGraph
from odeattn.tableau import ButcherTableau

__all__ = ["Plan", "lincomb", "shift"]

Terms = tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class Plan:
    """Per-stage non-zero coefficients of one tableau (float64 Python floats)."""

    stages: int
    rows: tuple[Terms, ...]  # rows[i] = ((j, a_ij), ...), a_ij ≠ 0
    c: tuple[float, ...]
    b: Terms
    b_err: Terms | None
    y_is_last_stage: bool  # explicit and a_s = b: y_1 is the last stage's input
    explicit: bool

    @classmethod
    def of(cls, tab: ButcherTableau) -> Plan:
        """The plan of a tableau, read off its (cached) :class:`MethodGraph`."""
        return _plan_of_tableau(tab)

    @classmethod
    def of_graph(cls, graph: MethodGraph) -> Plan:
        """Stage rows, nodes and weights from the graph's weighted edges (zeros already dropped)."""
        g, s = graph.graph, graph.stages
        idx = lambda name: int(name[1:]) - 1  # noqa: E731  "k3" -> 2

        def terms(node: str, prefix: str = "k") -> Terms:
            return tuple(
                sorted(
                    (idx(u), float(d["weight"]))
                    for u, _, d in g.in_edges(node, data=True)
                    if u.startswith(prefix) and d.get("weight") is not None
                )
            )

        rows = tuple(terms(f"k{i + 1}") for i in range(s))
        b = terms("phi")
        b_err = terms("err") if "err" in g else None
        explicit = graph.is_explicit
        return cls(
            s,
            rows,
            tuple(float(g.nodes[f"k{i + 1}"]["c"]) for i in range(s)),
            b,
            b_err,
            explicit and s > 1 and rows[-1] == b,
            explicit,
        )


_PLANS: dict[int, tuple[ButcherTableau, Plan]] = {}  # id -> (the tableau, kept alive; its plan)


def _plan_of_tableau(tab: ButcherTableau) -> Plan:
    """Built once per tableau object (networkx work) and kept here, not on the frozen tableau."""
    hit = _PLANS.get(id(tab))
    if hit is None or hit[0] is not tab:
        hit = (tab, Plan.of_graph(MethodGraph.from_tableau(tab)))
        _PLANS[id(tab)] = hit
    return hit[1]


def _unit_first(terms: Terms) -> Terms:
    """``terms`` with a unit-coefficient term (if any) moved to the front."""
    for n, (_, a) in enumerate(terms):
        if a == 1.0:
            return (terms[n], *terms[:n], *terms[n + 1 :]) if n else terms
    return terms


def lincomb(terms: Terms, ks: Sequence[Tensor]) -> Tensor:
    """Σ_j a_j k_j over the non-zero ``terms`` (at least one).

    Starts from a unit-coefficient term when there is one (``add(k_u, k_j, alpha=a_j)``: one op
    fewer than scaling the first term); the result is a fresh tensor unless it is a single k_j.
    """
    (j0, a0), *rest = _unit_first(terms)
    if not rest:
        return ks[j0] if a0 == 1.0 else ks[j0] * a0
    j1, a1 = rest[0]
    acc = torch.add(ks[j0] if a0 == 1.0 else ks[j0] * a0, ks[j1], alpha=a1)
    for j, a in rest[1:]:
        acc = acc.add_(ks[j], alpha=a)
    return acc


def shift(y: Tensor, terms: Terms, ks: Sequence[Tensor], h: Tensor | float) -> Tensor:
    """y + h Σ_j a_j k_j, with ``h`` a float or a tensor broadcastable to ``y``.

    The increments are summed first, then added to y once (one rounding at y's magnitude, as in
    the textbook ``y + h (a_1 k_1 + …)``): ``k_0 + Σ_j (a_j/a_0) k_j`` by ``add(alpha=)``, then
    ``add(y, ·, alpha=a_0 h)`` for a float h or ``addcmul(y, ·, h, value=a_0)`` for a tensor h;
    m ops for m terms, no 0-d tensors for a float h.
    """
    if not terms:
        return y
    (j0, a0), *rest = _unit_first(terms)
    acc = ks[j0]
    for n, (j, a) in enumerate(rest):
        acc = torch.add(acc, ks[j], alpha=a / a0) if n == 0 else acc.add_(ks[j], alpha=a / a0)
    if isinstance(h, float):
        return torch.add(y, acc, alpha=a0 * h)
    return torch.addcmul(y, acc, h, value=a0)


def node(t: Tensor, c: float, h: Tensor | float) -> Tensor:
    """t + c h (no op for c = 0)."""
    if c == 0.0:
        return t
    if isinstance(h, float):
        return t + c * h
    if c == 1.0:
        return t + h
    return torch.add(t, h, alpha=c)
