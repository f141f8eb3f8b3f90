"""Reading Butcher-tableau entries: vectors and full s×s matrices of exact or float numbers.

Entries may be ``Fraction``, ``"1/6"``-style strings, ints, floats or exact surd expressions
(``"1/4 - sqrt(3)/6"``, see :mod:`odeattn.tableau._exact`). Every problem is a ValueError that
names the tableau, the field and the index.
"""

from __future__ import annotations

from typing import Any

from odeattn.tableau._exact import Number, parse_entry

__all__ = ["parse_matrix", "parse_vector"]


def parse_vector(name: str, key: str, values: Any, s: int, exact: list[bool]) -> tuple:
    """``values`` as a tuple of s exact (or float) numbers; ``exact[0]`` cleared on a float."""
    try:
        items = list(values)
    except TypeError:
        raise ValueError(
            f"{name}: `{key}` must be a sequence of {s} numbers, but got {key}={values!r}"
        ) from None
    if len(items) != s:
        raise ValueError(
            f"{name}: `{key}` must have {s} entries (the number of rows "
            f"of a), but got {len(items)}: {key}={items!r}"
        )
    return tuple(_entry(name, key, i, x, exact) for i, x in enumerate(items))


def parse_matrix(name: str, rows: Any, exact: list[bool]) -> tuple:
    """``rows`` as a full s×s tuple of tuples of numbers (explicit rows padded by the caller)."""
    try:
        rows = [list(r) for r in rows]
    except TypeError:
        raise ValueError(
            f"{name}: `a` must be a full s×s matrix (a list of rows), but got a={rows!r}"
        ) from None
    s = len(rows)
    if s == 0:
        raise ValueError(f"{name}: `a` must have at least one row, but got a=[]")
    for i, r in enumerate(rows):
        if len(r) != s:
            raise ValueError(
                f"{name}: `a` must be a full {s}×{s} matrix (pad explicit "
                f"rows with zeros), but row {i} has {len(r)} entries: {r!r}"
            )
    return tuple(
        tuple(_entry(name, f"a[{i}]", j, x, exact) for j, x in enumerate(r))
        for i, r in enumerate(rows)
    )


def _entry(name: str, key: str, i: int, x: Any, exact: list[bool]) -> Number:
    try:
        value, is_exact = parse_entry(x)
    except ValueError as err:
        raise ValueError(f"{name}: `{key}[{i}]` is invalid: {err}") from None
    exact[0] = exact[0] and is_exact
    return value
