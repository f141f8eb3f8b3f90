"""Exact numbers for Butcher tableaux: rationals and quadratic surds a + b·√d.

Gauss–Legendre, Radau IIA and SDIRK tableaux live in Q(√d) for one square-free d (√3, √15, √6,
√2). :class:`Surd` implements that field exactly (a, b are ``Fraction``), so the order
conditions of those methods are checked with exact zero residuals, not with a tolerance.

:func:`parse_entry` turns a user entry into an exact number or a float:

- ``int`` / ``Fraction`` / ``Surd``: exact;
- ``str``: ``"1/6"``, ``"-3/40"`` (exact); decimal strings such as ``"0.161"`` become the exact
  decimal rational but are flagged *inexact* (they are truncations of irrational values);
  expressions with ``sqrt(int)``, ``+ - * /`` and parentheses, e.g. ``"(88 - 7*sqrt(6))/360"``;
- ``float``: kept as a float64 (inexact); NaN and ±inf are rejected.
"""

from __future__ import annotations

import ast
import math
from fractions import Fraction

__all__ = ["Exact", "Number", "Surd", "is_zero", "parse_entry", "to_float"]


def _squarefree_split(d: int) -> tuple[int, int]:
    """Return (k, r) with d = k² r and r square-free."""
    k, r, p = 1, d, 2
    while p * p <= r:
        while r % (p * p) == 0:
            r //= p * p
            k *= p
        p += 1
    return k, r


class Surd:
    """The exact number ``a + b·√d`` (a, b rational, d > 1 square-free, b ≠ 0)."""

    __slots__ = ("a", "b", "d")

    def __init__(self, a: Fraction | int, b: Fraction | int, d: int) -> None:
        self.a, self.b, self.d = Fraction(a), Fraction(b), int(d)

    @staticmethod
    def make(a: Fraction | int, b: Fraction | int, d: int) -> Exact:
        """Normalised constructor: returns a ``Fraction`` when the surd part vanishes."""
        k, r = _squarefree_split(int(d))
        a, b = Fraction(a), Fraction(b) * k
        if b == 0 or r == 1:
            return a + b if r == 1 else a
        return Surd(a, b, r)

    # -- field operations -------------------------------------------------------------------
    def _coerce(self, other: object) -> tuple[Fraction, Fraction] | None:
        if isinstance(other, Surd):
            if other.d != self.d:
                raise ValueError(f"cannot combine √{self.d} and √{other.d} exactly; use floats")
            return other.a, other.b
        if isinstance(other, (int, Fraction)):
            return Fraction(other), Fraction(0)
        return None

    def __add__(self, other: object) -> Number:
        if isinstance(other, float):
            return float(self) + other
        o = self._coerce(other)
        return NotImplemented if o is None else Surd.make(self.a + o[0], self.b + o[1], self.d)

    __radd__ = __add__

    def __neg__(self) -> Surd:
        return Surd(-self.a, -self.b, self.d)

    def __sub__(self, other: object) -> Number:
        return self + (-other)  # type: ignore[operator]

    def __rsub__(self, other: object) -> Number:
        return (-self) + other

    def __mul__(self, other: object) -> Number:
        if isinstance(other, float):
            return float(self) * other
        o = self._coerce(other)
        if o is None:
            return NotImplemented
        a, b = o
        return Surd.make(self.a * a + self.b * b * self.d, self.a * b + self.b * a, self.d)

    __rmul__ = __mul__

    def inverse(self) -> Exact:
        norm = self.a * self.a - self.b * self.b * self.d  # ≠ 0 since √d is irrational
        return Surd.make(self.a / norm, -self.b / norm, self.d)

    def __truediv__(self, other: object) -> Number:
        if isinstance(other, float):
            return float(self) / other
        if isinstance(other, Surd):
            return self * other.inverse()
        return NotImplemented if self._coerce(other) is None else self * (1 / Fraction(other))  # type: ignore[arg-type]

    def __rtruediv__(self, other: object) -> Number:
        return self.inverse() * other  # type: ignore[operator]

    def __pow__(self, n: int) -> Exact:
        out: Exact = Fraction(1)
        for _ in range(int(n)):
            out = out * self  # type: ignore[assignment]
        return out

    # -- comparisons and conversion ---------------------------------------------------------
    def approx(self, digits: int = 60) -> Fraction:
        """A rational within 10^-digits·|b| of the value."""
        scale = 10**digits
        root = Fraction(math.isqrt(self.d * scale * scale), scale)
        return self.a + self.b * root

    def __float__(self) -> float:
        return float(self.approx())

    def __abs__(self) -> Fraction:
        return abs(self.approx())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Surd):
            return (self.a, self.b, self.d) == (other.a, other.b, other.d)
        return False  # a normalised Surd is irrational, never equal to a rational

    def __hash__(self) -> int:
        return hash((self.a, self.b, self.d))

    def to_expr(self) -> str:
        """Parseable text, e.g. ``"1/4 - 1/6*sqrt(3)"``."""
        sign = "-" if self.b < 0 else "+"
        return f"{self.a} {sign} {abs(self.b)}*sqrt({self.d})"

    def __repr__(self) -> str:
        sign = "-" if self.b < 0 else "+"
        return f"{self.a} {sign} {abs(self.b)}·√{self.d}"


Exact = Fraction | Surd
Number = Fraction | Surd | float

_BINOPS = {
    ast.Add: lambda x, y: x + y,
    ast.Sub: lambda x, y: x - y,
    ast.Mult: lambda x, y: x * y,
    ast.Div: lambda x, y: x / y,
}


def _eval(node: ast.AST, text: str) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body, text)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return Fraction(node.value)
    if isinstance(node, ast.Constant) and isinstance(node.value, float):
        return Fraction(ast.get_source_segment(text, node) or repr(node.value))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, text), _eval(node.right, text))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        exp = _eval(node.right, text)
        if not (isinstance(exp, Fraction) and exp.denominator == 1 and exp >= 0):
            raise ValueError("only non-negative integer powers are allowed")
        return _eval(node.left, text) ** int(exp)  # type: ignore[operator]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand, text)
        return -v if isinstance(node.op, ast.USub) else v
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "sqrt"
        and len(node.args) == 1
        and not node.keywords
    ):
        arg = _eval(node.args[0], text)
        if not (isinstance(arg, Fraction) and arg >= 0):
            raise ValueError("sqrt() takes a non-negative rational")
        # √(p/q) = √(p·q)/q
        return Surd.make(0, Fraction(1, arg.denominator), arg.numerator * arg.denominator)
    raise ValueError("allowed are numbers, + - * / **, parentheses and sqrt(n)")


def parse_entry(x: object) -> tuple[Number, bool]:
    """Return ``(value, exact)`` for one tableau entry; raise ValueError if unusable."""
    if isinstance(x, bool):
        raise ValueError(f"a boolean is not a coefficient, got {x!r}")
    if isinstance(x, (int, Fraction)):
        return Fraction(x), True
    if isinstance(x, Surd):
        return x, True
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"entries must be finite, got {x!r}")
        return x, False
    if isinstance(x, str):
        text = x.strip()
        try:
            value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            try:
                value = _eval(ast.parse(text, mode="eval"), text)
            except (SyntaxError, ZeroDivisionError) as err:
                raise ValueError(f"cannot parse coefficient {x!r}: {err}") from None
            except ValueError as err:
                raise ValueError(f"cannot parse coefficient {x!r}: {err}") from None
        inexact = any(ch in text for ch in ".eE") and "sqrt" not in text
        return value, not inexact
    try:  # numpy scalars and the like
        return parse_entry(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"entries must be numbers or strings like '1/6', got {x!r}") from None


def to_float(x: Number) -> float:
    """Correctly rounded float64 of an exact number (floats pass through)."""
    return float(x)


def is_zero(x: Number, tol: float) -> bool:
    """Exact zero test for exact numbers when ``tol == 0``; otherwise ``|x| ≤ tol``."""
    if tol == 0 and not isinstance(x, float):
        return x == 0
    return abs(x) <= tol  # type: ignore[operator]
