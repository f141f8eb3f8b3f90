"""The ``ButcherTableau`` value (re-exported by :mod:`odeattn.tableau`; no torch).

An s-stage Runge–Kutta method for y' = f(t, y) (RKCNN Eq. 2–3)

    k_i = f(t + c_i h, y + h Σ_j a_ij k_j),    y_1 = y + h Σ_i b_i k_i,
    err  = h Σ_i b_err_i k_i,  b_err = b − b̂   (b̂: the embedded solution of order err_order)

is checked at construction: shapes, finite entries, row sums c_i = Σ_j a_ij, Σ b = 1,
Σ b_err = 0, and the declared orders against the rooted-tree conditions (they must hold at the
order and fail at order + 1). Exact tableaux (``Fraction``, ``"1/6"``, ``"1/4 - sqrt(3)/6"``)
are checked with exact zero residuals; tableaux with float or decimal entries with ``tol``
(default 1e-12).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Any

from odeattn.tableau._exact import Number, Surd, is_zero
from odeattn.tableau._parse import parse_matrix, parse_vector
from odeattn.tableau._stability import StabilityFunction, stability_function
from odeattn.tableau._trees import order_residuals

__all__ = ["ButcherTableau"]

_FLOAT_TOL = 1e-12


def _fmt(x: Number) -> str:
    return repr(x) if isinstance(x, float) else str(x)


@dataclass(frozen=True, eq=True)
class ButcherTableau:
    """A Runge–Kutta method: nodes ``c``, full s×s matrix ``a``, weights ``b``, optional ``b_err``.

    Args:
        name: identifier (``TABLEAUS`` key for the built-in ones).
        c: nodes, length s (``None``: the row sums of ``a``).
        a: full s×s matrix (implicit methods fit); rows must have length s.
        b: weights of the propagated solution, order ``order``.
        b_err: ``b − b̂`` for an embedded pair (the error estimate is ``h Σ b_err_i k_i``).
        order: declared order p (checked: conditions hold at p, fail at p+1).
        err_order: order q of the embedded solution ``b̂`` (inferred when omitted).
        tol: residual tolerance of the checks; ``None`` → 0 (exact) when every entry is exact,
            else 1e-12.
        source: free-text reference shown by ``python -m odeattn.tableau show``.
    """

    name: str
    c: tuple[Number, ...] | None
    a: tuple[tuple[Number, ...], ...]
    b: tuple[Number, ...]
    b_err: tuple[Number, ...] | None = None
    order: int = field(kw_only=True)
    err_order: int | None = field(default=None, kw_only=True)
    # dense output at θ = 1/2 (Shampine 1986): y(t + h/2) ≈ y + h Σ b_mid_i k_i; None if the method has none
    b_mid: tuple[Number, ...] | None = field(default=None, kw_only=True)
    tol: float | None = field(default=None, kw_only=True, compare=False)
    source: str = field(default="", kw_only=True, compare=False)

    # -- construction -------------------------------------------------------------------------
    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string, but got name={name!r}")
        exact = [True]
        a = parse_matrix(name, self.a, exact)
        s = len(a)
        b = parse_vector(name, "b", self.b, s, exact)
        c = (
            tuple(sum(row, Fraction(0)) for row in a)
            if self.c is None
            else parse_vector(name, "c", self.c, s, exact)
        )
        b_err = None if self.b_err is None else parse_vector(name, "b_err", self.b_err, s, exact)
        b_mid = None if self.b_mid is None else parse_vector(name, "b_mid", self.b_mid, s, exact)
        tol = self.tol if self.tol is not None else (0.0 if exact[0] else _FLOAT_TOL)
        if not tol >= 0:
            raise ValueError(f"{name}: `tol` must be ≥ 0, but got tol={self.tol!r}")
        for key, value in (
            ("a", a),
            ("b", b),
            ("c", c),
            ("b_err", b_err),
            ("b_mid", b_mid),
            ("tol", tol),
        ):
            object.__setattr__(self, key, value)
        self._check_sums()
        if b_mid is not None and not is_zero(sum(b_mid, Fraction(0)) - Fraction(1, 2), tol):
            raise ValueError(
                f"{name}: mid-point weights must satisfy Σ b_mid = 1/2 (they step half an interval), "
                f"but Σ b_mid = {_fmt(sum(b_mid, Fraction(0)))}"
            )
        self._check_order("order", "b", b, self.order)
        if b_err is not None:
            b_hat = tuple(bi - ei for bi, ei in zip(b, b_err))
            q = self.err_order if self.err_order is not None else self._max_order(b_hat)
            self._check_order("err_order", "b̂ = b − b_err", b_hat, q)
            object.__setattr__(self, "err_order", q)
        elif self.err_order is not None:
            raise ValueError(
                f"{name}: `err_order` needs `b_err`, but got b_err=None, "
                f"err_order={self.err_order}; drop err_order or give b_err"
            )

    def _check_sums(self) -> None:
        tol, name = self.tol, self.name
        for i, (ci, row) in enumerate(zip(self.c, self.a)):
            rs = sum(row, Fraction(0))
            if not is_zero(rs - ci, tol):
                raise ValueError(
                    f"{name}: row sums must equal the nodes, c_i = Σ_j a_ij, but "
                    f"row {i} sums to {_fmt(rs)} while c[{i}] = {_fmt(ci)}"
                )
        sb = sum(self.b, Fraction(0))
        if not is_zero(sb - 1, tol):
            raise ValueError(f"{name}: weights must satisfy Σ b = 1, but Σ b = {_fmt(sb)}")
        if self.b_err is not None:
            se = sum(self.b_err, Fraction(0))
            if not is_zero(se, tol):
                raise ValueError(
                    f"{name}: error weights b_err = b − b̂ must satisfy Σ b_err = 0,"
                    f" but Σ b_err = {_fmt(se)}"
                )

    def _check_order(self, key: str, label: str, weights: tuple, p: int) -> None:
        if not isinstance(p, int) or isinstance(p, bool) or p < 1:
            raise ValueError(f"{self.name}: `{key}` must be a positive int, but got {key}={p!r}")
        for tree, res in order_residuals(self.a, weights, p + 1):
            if tree.order <= p and not is_zero(res, self.tol):
                raise ValueError(
                    f"{self.name}: declared {key}={p} but the order-{tree.order} condition for "
                    f"tree {tree.bracket()} fails for {label}: Σ bΦ − 1/γ = {_fmt(res)} "
                    f"(1/γ = 1/{tree.gamma}); the method has order {self._max_order(weights)}"
                )
        if self._max_order(weights, upto=p + 1) > p:
            raise ValueError(
                f"{self.name}: declared {key}={p} but every order-{p + 1} condition "
                f"also holds for {label}; declare {key}={self._max_order(weights)}"
            )

    def _max_order(self, weights: tuple, upto: int = 12) -> int:
        """Largest p ≤ upto whose conditions all hold (0 if Σ b ≠ 1)."""
        p = 0
        for tree, res in order_residuals(self.a, weights, upto):
            if not is_zero(res, self.tol):
                return tree.order - 1
            p = tree.order
        return p

    def order_report(self) -> dict[str, Any]:
        """Re-check the conditions and count them: what ``verify`` prints."""
        rep: dict[str, Any] = {"name": self.name, "stages": self.stages, "order": self.order}
        for key, w, p in (("b", self.b, self.order),) + (
            (("b_hat", tuple(x - e for x, e in zip(self.b, self.b_err)), self.err_order),)
            if self.b_err is not None
            else ()
        ):
            res = list(order_residuals(self.a, w, p + 1))
            held = sum(is_zero(r, self.tol) for t, r in res if t.order <= p)
            nxt = [r for t, r in res if t.order == p + 1]
            rep[key] = {
                "order": p,
                "conditions_held": f"{held}/{len(res) - len(nxt)}",
                "fail_at_next_order": f"{sum(not is_zero(r, self.tol) for r in nxt)}/{len(nxt)}",
                "max_residual": float(max((abs(r) for t, r in res if t.order <= p), default=0.0)),
            }
        rep.update(
            row_sums="ok",
            tolerance=self.tol or "exact",
            stage_order=self.stage_order,
            explicit=self.is_explicit,
            fsal=self.fsal,
        )
        return rep

    # -- derived properties ---------------------------------------------------------------
    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def is_explicit(self) -> bool:
        """Strictly lower-triangular ``a``: stages computed one after another."""
        return all(self.a[i][j] == 0 for i in range(self.stages) for j in range(i, self.stages))

    @property
    def is_diagonally_implicit(self) -> bool:
        """Lower-triangular ``a`` with a non-zero diagonal entry (DIRK / SDIRK / ESDIRK)."""
        s = self.stages
        lower = all(self.a[i][j] == 0 for i in range(s) for j in range(i + 1, s))
        return lower and not self.is_explicit

    @property
    def is_implicit(self) -> bool:
        return not self.is_explicit

    @property
    def fsal(self) -> bool:
        """First Same As Last: explicit first stage at c=0, last stage at c=1 with row a_s = b.

        Then k_s of a step equals f(t + h, y_1) = k_1 of the next step.
        """
        return (
            self.stages > 1
            and all(x == 0 for x in self.a[0])
            and self.c[-1] == 1
            and tuple(self.a[-1]) == tuple(self.b)
        )

    @property
    def stiffly_accurate(self) -> bool:
        """The last row of ``a`` equals ``b`` (y_1 is the last stage value)."""
        return tuple(self.a[-1]) == tuple(self.b)

    @cached_property
    def stage_order(self) -> int:
        """Largest q ≤ order with C(q): Σ_j a_ij c_j^(k−1) = c_i^k / k for k ≤ q, and B(q)."""
        s, q = self.stages, 0
        for k in range(1, self.order + 1):
            cond_b = sum((self.b[i] * self.c[i] ** (k - 1) for i in range(s)), Fraction(0))
            if not is_zero(cond_b - Fraction(1, k), self.tol):
                break
            for i in range(s):
                lhs = sum((self.a[i][j] * self.c[j] ** (k - 1) for j in range(s)), Fraction(0))
                if not is_zero(lhs - self.c[i] ** k / k, self.tol):
                    return q
            q = k
        return q

    @cached_property
    def stability_function(self) -> StabilityFunction:
        """R(z) = det(I − zA + z 1 bᵀ) / det(I − zA), exact coefficients when the tableau is."""
        return stability_function(self.a, self.b, self.tol)

    def R(self, z: complex) -> complex:
        """Evaluate the stability function at ``z`` (y_1 = R(hλ) y_0 for y' = λy)."""
        return self.stability_function(z)

    # -- float64 views for numerics (cached: after the first read a plain attribute lookup, so
    # traced/compiled code that reads them runs no conversion; compile reads them when it plans)
    @cached_property
    def c_f(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self.c)

    @cached_property
    def a_f(self) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(float(x) for x in r) for r in self.a)

    @cached_property
    def b_f(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self.b)

    @cached_property
    def b_err_f(self) -> tuple[float, ...] | None:
        return None if self.b_err is None else tuple(float(x) for x in self.b_err)

    def __repr__(self) -> str:
        kind = "explicit" if self.is_explicit else "implicit"
        emb = f"({self.err_order})" if self.b_err is not None else ""
        return (
            f"ButcherTableau({self.name!r}, {self.stages} stages, {kind}, order {self.order}{emb})"
        )

    def table(self) -> str:
        """The tableau as text (c | a over b, b_err)."""
        rows = [[_fmt(ci), "|", *(_fmt(x) for x in r)] for ci, r in zip(self.c, self.a)]
        rows.append(["", "+", *(["-"] * self.stages)])
        rows.append(["b", "|", *(_fmt(x) for x in self.b)])
        if self.b_err is not None:
            rows.append(["b_err", "|", *(_fmt(x) for x in self.b_err)])
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        return "\n".join("  ".join(x.rjust(w) for x, w in zip(r, widths)).rstrip() for r in rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (exact entries as strings), e.g. for JSON."""

        def conv(x: Number) -> Any:
            return x if isinstance(x, float) else (x.to_expr() if isinstance(x, Surd) else str(x))

        vec = lambda v: None if v is None else [conv(x) for x in v]  # noqa: E731
        return {
            "name": self.name,
            "c": vec(self.c),
            "a": [vec(r) for r in self.a],
            "b": vec(self.b),
            "b_err": vec(self.b_err),
            "order": self.order,
            "err_order": self.err_order,
        }
