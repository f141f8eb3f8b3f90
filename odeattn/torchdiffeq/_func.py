"""The pieces of torchdiffeq's calling convention that wrap the user's ``func``.

- ``PFunc``: ``func(t, y, perturb=±1|0)`` with t cast to y's real dtype; ``perturb`` moves t to the
  next/previous representable value (torchdiffeq's ``perturb`` option: evaluate just inside a
  step, never on a discontinuity at a grid point). Gradients pass through the move unchanged.
- tuple states: flattened into one vector (``flat``/``unflat``), func and norms wrapped to see
  the tuple; tolerances given per tuple element are expanded per entry.
- reverse time: t → −t, f → −f(−t, y) (torchdiffeq's convention; step_t/jump_t/grids negated).
- norms: ``rms_norm`` (the default), ``mixed_norm`` (max of per-tensor RMS, for tuples).
- callbacks: ``callback_step``, ``callback_accept_step``, ``callback_reject_step`` (and their
  ``_adjoint`` forms) read from ``func``; missing ones are no-ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["CALLBACKS", "PFunc", "flat", "mixed_norm", "rms_norm", "unflat"]

CALLBACKS = ("callback_step", "callback_accept_step", "callback_reject_step")


def rms_norm(x: Tensor) -> Tensor:
    """Root mean square of |x| (torchdiffeq's default error norm)."""
    return x.abs().pow(2).mean().sqrt()


def mixed_norm(xs: Sequence[Tensor]) -> Tensor | float:
    """max over the tensors of their RMS (torchdiffeq's norm for tuple states)."""
    return max((rms_norm(x) for x in xs), default=0.0)


def flat(ys: Sequence[Tensor]) -> Tensor:
    return torch.cat([y.reshape(-1) for y in ys])


def unflat(v: Tensor, lead: tuple[int, ...], shapes: Sequence[torch.Size]) -> tuple[Tensor, ...]:
    """Split the last dim of ``v`` back into tensors of ``shapes`` (leading dims ``lead``)."""
    out, k = [], 0
    for s in shapes:
        n = s.numel()
        out.append(v[..., k : k + n].view((*lead, *s)))
        k += n
    return tuple(out)


class _Stitch(torch.autograd.Function):
    """Value of ``moved``, gradient of ``x`` (nextafter has no derivative of its own)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, moved: Tensor) -> Tensor:
        return moved

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        return g, None


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


class PFunc:
    """``base(t, y)`` for the solvers: tuple states, reverse time, ``perturb`` and callbacks."""

    def __init__(
        self,
        base: Callable,
        shapes: Sequence[torch.Size] | None,
        sign: float,
        callbacks_from: Any = None,
        adjoint: bool = False,
    ) -> None:
        self.base, self.shapes, self.sign = base, shapes, sign
        src = base if callbacks_from is None else callbacks_from
        suffix = "_adjoint" if adjoint else ""
        self.callbacks: set[str] = set()
        for name in CALLBACKS:
            cb = getattr(src, name + suffix, None)
            if cb is not None and cb is not _noop:
                self.callbacks.add(name)
                setattr(self, name, self._wrap_cb(cb))
            else:
                setattr(self, name, _noop)

    def _wrap_cb(self, cb: Callable) -> Callable:
        def call(t0: Tensor, y0: Tensor, dt: Tensor) -> Any:
            y = unflat(y0, (), self.shapes) if self.shapes is not None else y0
            return cb(self.sign * t0, y, dt)

        return call

    def __call__(self, t: Tensor, y: Tensor, perturb: int = 0) -> Tensor:
        if torch.is_complex(t):
            t = t.real
        t = t.to(y.real.dtype if y.is_complex() else y.dtype)
        if perturb:
            with torch.no_grad():
                moved = torch.nextafter(t, t + perturb)
            t = _Stitch.apply(t, moved)
        if self.sign < 0:
            t = -t
        if self.shapes is None:
            f = self.base(t, y)
        else:
            f = flat(self.base(t, unflat(y, (), self.shapes)))
        return -f if self.sign < 0 else f
