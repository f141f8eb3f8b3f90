"""Rooted trees and the Butcher order conditions of a Runge–Kutta method.

A Runge–Kutta method (A, b) has order p iff for every rooted tree τ with |τ| ≤ p

    Σ_i b_i Φ_i(τ) = 1 / γ(τ),

where Φ(•) = 1 (the all-ones vector), Φ(τ) = ∏_{children σ} (A Φ(σ)) elementwise for
τ = [σ_1, …, σ_m], and γ(τ) = |τ| ∏ γ(σ_k) (Butcher 1963; Hairer–Nørsett–Wanner I, §II.2).
The numbers of trees of order 1…7 are 1, 1, 2, 4, 9, 20, 48. Trees are enumerated generically
here: a tree is the canonical (sorted) tuple of the indices of its children in a global list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

from odeattn.tableau._exact import Number

__all__ = ["RootedTree", "order_residuals", "trees_of_order"]


@dataclass(frozen=True)
class RootedTree:
    """One rooted tree: ``children`` are indices into the global tree list."""

    index: int
    order: int
    children: tuple[int, ...]
    gamma: int  # density γ(τ)

    def bracket(self) -> str:
        """Butcher's bracket notation, e.g. ``[[•]•]``."""
        if not self.children:
            return "•"
        return "[" + "".join(_ALL[i].bracket() for i in self.children) + "]"


_ALL: list[RootedTree] = []


def _forests(total: int, max_index: int) -> list[tuple[int, ...]]:
    """Non-increasing index tuples of already-built trees whose orders sum to ``total``."""
    if total == 0:
        return [()]
    out = []
    for i in range(max_index, -1, -1):
        t = _ALL[i]
        if t.order <= total:
            out.extend((i, *rest) for rest in _forests(total - t.order, i))
    return out


@cache
def trees_of_order(n: int) -> tuple[RootedTree, ...]:
    """All rooted trees with ``n`` vertices (built once, in increasing order)."""
    if n < 1:
        raise ValueError(f"tree order must be ≥ 1, got n={n}")
    if n > 1:
        trees_of_order(n - 1)  # make sure smaller trees exist
    if n == 1:
        if not _ALL:
            _ALL.append(RootedTree(0, 1, (), 1))
        return (_ALL[0],)
    built = []
    last_smaller = len(_ALL) - 1
    for children in _forests(n - 1, last_smaller):
        gamma = n
        for i in children:
            gamma *= _ALL[i].gamma
        tree = RootedTree(len(_ALL), n, children, gamma)
        _ALL.append(tree)
        built.append(tree)
    return tuple(built)


def order_residuals(a: Sequence[Sequence[Number]], b: Sequence[Number], max_order: int):
    """Yield ``(tree, Σ b_i Φ_i(τ) − 1/γ(τ))`` for every tree with |τ| ≤ ``max_order``.

    Works with exact numbers (``Fraction``/``Surd``, exact residuals) and floats.
    """
    s = len(b)
    phi: dict[int, list[Number]] = {}
    a_phi: dict[int, list[Number]] = {}
    for n in range(1, max_order + 1):
        for tree in trees_of_order(n):
            v: list[Number] = [Fraction(1)] * s
            for ch in tree.children:
                if ch not in a_phi:
                    p = phi[ch]
                    a_phi[ch] = [
                        sum((a[i][j] * p[j] for j in range(s) if a[i][j] != 0), Fraction(0))
                        for i in range(s)
                    ]
                w = a_phi[ch]
                v = [v[i] * w[i] for i in range(s)]
            phi[tree.index] = v
            total = sum((b[i] * v[i] for i in range(s)), Fraction(0))
            yield tree, total - Fraction(1, tree.gamma)
