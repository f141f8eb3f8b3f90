"""Helpers to write tableaux compactly: strictly lower rows padded to s×s, and b_err = b − b̂ exactly."""

from __future__ import annotations

from odeattn.tableau._exact import parse_entry

__all__ = ["diff", "lower"]


def diff(b: list, b_hat: list) -> list:
    """``b − b̂`` entry by entry, exactly (so no difference is transcribed by hand)."""
    return [parse_entry(x)[0] - parse_entry(y)[0] for x, y in zip(b, b_hat)]


def lower(rows: list[list]) -> list[list]:
    """Pad the strictly lower rows of an explicit method to a full s×s matrix."""
    s = len(rows)
    return [[*r, *([0] * (s - len(r)))] for r in rows]
