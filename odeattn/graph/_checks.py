"""Argument checks of the method-graph constructors: the step node kind, RKCNN (variant, stages,
sweeps) (Zhu et al., RKCNN Sec. 3: -E has no update sweeps, -I/-R at least one)."""

from __future__ import annotations

from typing import Any

__all__ = ["STEP_KINDS"]

STEP_KINDS = ("none", "constant", "learnable", "adaptor", "controller")


def _step_kind(step: Any) -> str:
    if step is None:
        return "none"
    if isinstance(step, (int, float)) and not isinstance(step, bool):
        return "constant"
    if step in STEP_KINDS[2:]:
        return str(step)
    raise ValueError(
        f"`step` must be None, a float, or one of {STEP_KINDS[2:]}, but got step={step!r}"
    )


def _rkcnn_args(variant: str, stages: int, sweeps: int | None) -> tuple[str, int]:
    v = str(variant).upper()
    if v not in ("E", "I", "R"):
        raise ValueError(f"`variant` must be 'E', 'I' or 'R', but got variant={variant!r}")
    if not isinstance(stages, int) or isinstance(stages, bool) or stages < 1:
        raise ValueError(f"`stages` must be an int ≥ 1, but got stages={stages!r}")
    n = (0 if v == "E" else 1) if sweeps is None else sweeps
    if not isinstance(n, int) or isinstance(n, bool) or n < 0 or (v == "E") != (n == 0):
        raise ValueError(
            f"`sweeps` must be 0 for RKCNN-E and ≥ 1 for -I/-R, but got "
            f"variant={v!r}, sweeps={sweeps!r}"
        )
    if v != "E" and stages < 2:
        raise ValueError(f"RKCNN-{v} update sweeps need stages ≥ 2, but got stages={stages}")
    return v, n
