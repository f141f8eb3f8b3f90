"""The linear stability function of a Runge–Kutta method.

For y' = λy one step gives y_1 = R(z) y_0 with z = hλ and

    R(z) = 1 + z bᵀ (I − zA)⁻¹ 1 = det(I − zA + z 1 bᵀ) / det(I − zA)

(Hairer–Wanner II, Prop. IV.3.2). Both determinants are polynomials of degree ≤ s; they are
evaluated exactly at z = 0, 1, …, s and interpolated, so exact tableaux give exact coefficients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from odeattn.tableau._exact import Number, is_zero

__all__ = ["StabilityFunction", "det", "solve", "stability_function"]


def _pivot(col: list[Number], start: int) -> int:
    if any(isinstance(x, float) for x in col):
        return max(range(start, len(col)), key=lambda i: abs(col[i]))
    return next((i for i in range(start, len(col)) if col[i] != 0), start)


def det(m: Sequence[Sequence[Number]]) -> Number:
    """Determinant by Gaussian elimination (exact for exact entries)."""
    rows = [list(r) for r in m]
    n, out = len(rows), Fraction(1)
    for k in range(n):
        p = _pivot([rows[i][k] for i in range(n)], k)
        if rows[p][k] == 0:
            return Fraction(0)
        if p != k:
            rows[k], rows[p] = rows[p], rows[k]
            out = -out
        out = out * rows[k][k]
        for i in range(k + 1, n):
            f = rows[i][k] / rows[k][k]
            rows[i] = [rows[i][j] - f * rows[k][j] for j in range(n)]
    return out


def solve(m: Sequence[Sequence[Number]], y: Sequence[Number]) -> list[Number]:
    """Solve ``m x = y`` by Gaussian elimination (exact for exact entries)."""
    n = len(m)
    rows = [[*m[i], y[i]] for i in range(n)]
    for k in range(n):
        p = _pivot([rows[i][k] for i in range(n)], k)
        rows[k], rows[p] = rows[p], rows[k]
        for i in range(n):
            if i != k and rows[i][k] != 0:
                f = rows[i][k] / rows[k][k]
                rows[i] = [rows[i][j] - f * rows[k][j] for j in range(n + 1)]
    return [rows[i][n] / rows[i][i] for i in range(n)]


def _poly_from_values(values: list[Number], tol: float) -> tuple[Number, ...]:
    n = len(values)
    vander = [[Fraction(z) ** k for k in range(n)] for z in range(n)]
    coef = solve(vander, values)
    while len(coef) > 1 and is_zero(coef[-1], tol):
        coef.pop()
    return tuple(coef)


def _short(c: Number) -> str:
    text = str(c)
    return text if len(text) <= 24 else repr(float(c))


@dataclass(frozen=True)
class StabilityFunction:
    """R(z) = P(z)/Q(z); ``num``/``den`` are coefficients in ascending powers of z."""

    num: tuple[Number, ...]
    den: tuple[Number, ...]

    def __call__(self, z: complex) -> complex:
        p = sum(complex(float(c)) * z**k for k, c in enumerate(self.num))
        q = sum(complex(float(c)) * z**k for k, c in enumerate(self.den))
        return p / q

    def __str__(self) -> str:
        def poly(cs: tuple) -> str:
            terms = [
                f"({_short(c)})" + ("" if k == 0 else "·z" if k == 1 else f"·z^{k}")
                for k, c in enumerate(cs)
                if c != 0
            ]
            return " + ".join(terms) or "0"

        if len(self.den) == 1 and self.den[0] == 1:
            return poly(self.num)
        return f"[{poly(self.num)}] / [{poly(self.den)}]"


def stability_function(
    a: Sequence[Sequence[Number]], b: Sequence[Number], tol: float = 0.0
) -> StabilityFunction:
    """R(z) of the method (a, b), see the module docstring."""
    s = len(b)
    nums, dens = [], []
    for z in range(s + 1):
        eye_minus = [[(1 if i == j else 0) - z * a[i][j] for j in range(s)] for i in range(s)]
        dens.append(det(eye_minus))
        nums.append(det([[eye_minus[i][j] + z * b[j] for j in range(s)] for i in range(s)]))
    return StabilityFunction(_poly_from_values(nums, tol), _poly_from_values(dens, tol))
