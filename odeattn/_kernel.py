"""The explicit stage kernel: constant coefficients baked in as Python floats.

A :class:`Plan` is made once per tableau: for every stage the list of ``(j, a_ij)`` with
a_ij ≠ 0 (zero terms are skipped), the nodes c_i, and the non-zero weights of b and b_err.
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

from odeattn._butcher import ButcherTableau

__all__ = ["Plan", "lincomb", "shift"]

Terms = tuple[tuple[int, float], ...]


def _terms(row: Sequence[float]) -> Terms:
    return tuple((j, float(a)) for j, a in enumerate(row) if a != 0)


@dataclass(frozen=True)
class Plan:
    """Per-stage non-zero coefficients of one tableau (float64 Python floats)."""

    stages: int
    rows: tuple[Terms, ...]        # rows[i] = ((j, a_ij), ...), a_ij ≠ 0
    c: tuple[float, ...]
    b: Terms
    b_err: Terms | None
    y_is_last_stage: bool          # explicit and a_s = b: y_1 is the last stage's input
    explicit: bool

    @classmethod
    def of(cls, tab: ButcherTableau) -> Plan:
        last = tab.is_explicit and tab.stages > 1 and tuple(tab.a[-1]) == tuple(tab.b)
        return cls(tab.stages, tuple(_terms(r) for r in tab.a_f), tab.c_f, _terms(tab.b_f),
                   None if tab.b_err_f is None else _terms(tab.b_err_f), last, tab.is_explicit)


def lincomb(terms: Terms, ks: Sequence[Tensor]) -> Tensor:
    """Σ_j a_j k_j over the non-zero ``terms`` (at least one)."""
    (j0, a0), *rest = terms
    if not rest:
        return ks[j0] if a0 == 1.0 else ks[j0] * a0
    j1, a1 = rest[0]
    acc = torch.add(ks[j0] if a0 == 1.0 else ks[j0] * a0, ks[j1], alpha=a1)
    for j, a in rest[1:]:
        acc = acc.add_(ks[j], alpha=a)
    return acc


def shift(y: Tensor, terms: Terms, ks: Sequence[Tensor], h: Tensor | float) -> Tensor:
    """y + h Σ_j a_j k_j, with ``h`` a float or a tensor broadcastable to ``y``."""
    if not terms:
        return y
    if isinstance(h, float):
        if len(terms) == 1:
            j, a = terms[0]
            return torch.add(y, ks[j], alpha=a * h)
        return torch.add(y, lincomb(terms, ks), alpha=h)
    if len(terms) == 1:
        j, a = terms[0]
        return torch.addcmul(y, ks[j], h, value=a)
    return torch.addcmul(y, lincomb(terms, ks), h)


def node(t: Tensor, c: float, h: Tensor) -> Tensor:
    """t + c h (no op for c = 0)."""
    if c == 0.0:
        return t
    if c == 1.0:
        return t + h
    return torch.add(t, h, alpha=c)
