"""The step node every compiled block shares: ``y = x_t + h·Δt ⊙ Φ``, emitted to a recorder.

StepNet Eq. 12 reads channel attention as the step size Δt of ``x_{t+1} = x_t + Δt ⊙ Φ(x_t)``.
:class:`StepBase` holds the step node (None: Δt = 1 with no multiply; a float; ``"learnable"``;
an adaptor module ``dt = step(x_t, Φ)``), forms the output and hands it to the stiffness
recorder through :class:`~odeattn.compile._record.Recordable`; :class:`StepRecord` is what a
block keeps with ``retain_last = True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from odeattn.compile._plan import lincomb
from odeattn.compile._record import Recordable

__all__ = ["StepBase", "StepRecord", "as_modules"]


@dataclass
class StepRecord:
    """What one compiled step computed on its last call (``retain_last = True``)."""

    x_t: Tensor
    stages: tuple[Tensor, ...]
    phi: Tensor
    dt: Tensor | float  # Δt as given by the step node (1.0 when step=None)
    h: float
    y: Tensor
    error: Tensor | None  # h Σ b_err_i k_i (before Δt), None without b_err


class _Fn(nn.Module):
    def __init__(self, fn: Callable) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any) -> Tensor:
        return self.fn(*args)


def as_modules(fields: Any) -> nn.ModuleList:
    items = list(fields) if isinstance(fields, (list, tuple, nn.ModuleList)) else [fields]
    if not items:
        raise ValueError("`fields` must be a module (shared f) or a list of modules, got []")
    for i, m in enumerate(items):
        if not callable(m):
            raise ValueError(f"`fields[{i}]` must be an nn.Module or callable, but got {m!r}")
    return nn.ModuleList(m if isinstance(m, nn.Module) else _Fn(m) for m in items)


class StepBase(nn.Module, Recordable):
    """The step node and output of every compiled block: ``y = x_t + h·Δt ⊙ Φ``, emit, record."""

    def _init_step(self, step: Any, shortcut: nn.Module | None, h: float) -> None:
        if not isinstance(h, (int, float)) or isinstance(h, bool) or h != h or h == 0:
            raise ValueError(f"`h` must be a non-zero finite float, but got h={h!r}")
        if isinstance(step, str) and step == "learnable":
            step = _Learnable()
        if not (step is None or isinstance(step, (int, float)) or callable(step)):
            raise ValueError(
                f"`step` must be None, a float, 'learnable' or an adaptor module, "
                f"but got step={step!r}"
            )
        self.step = (
            step
            if isinstance(step, nn.Module) or step is None
            else (float(step) if isinstance(step, (int, float)) else _Fn(step))
        )
        self.shortcut = shortcut
        self.h = float(h)
        self.retain_last, self.last = False, None

    def _finish(self, x_t: Tensor, phi: Tensor, ks: list[Tensor], err_terms: Any = None) -> Tensor:
        step, h, rec = self.step, self.h, self._recorder
        if step is None and h == 1.0 and rec is not None:
            dt: Tensor | float = 1.0
            y = self._add(x_t, phi)  # x_t + Φ and its norms in one pass
            rec = None  # recorded
        elif step is None:
            dt = 1.0
            y = x_t + phi if h == 1.0 else torch.add(x_t, phi, alpha=h)
        elif isinstance(step, float):
            dt = step
            y = torch.add(x_t, phi, alpha=h * step)
        else:
            dt = step(x_t, phi)
            if rec is not None and h == 1.0:
                y = self._addcmul(x_t, dt, phi)  # x_t + Δt ⊙ Φ and its norms in one pass
                rec = None  # recorded
            else:
                y = torch.addcmul(x_t, dt, phi, value=h)
        if rec is not None:
            rec.emit(self, x_t, y, phi, dt if h == 1.0 else dt * h)
        if self.retain_last:
            err = None if err_terms is None else lincomb(err_terms, ks) * h
            self.last = StepRecord(x_t, tuple(ks), phi, dt, h, y, err)
        return y


class _Learnable(nn.Module):
    """A learnable scalar step Δt (initialised to 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.dt = nn.Parameter(torch.ones(()))

    def forward(self, x_t: Tensor, phi: Tensor) -> Tensor:
        return self.dt
