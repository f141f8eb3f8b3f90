"""The recording seam shared by every residual block (compiled steps, RKCNN blocks, ODE blocks).

A block that can be measured inherits :class:`Recordable`. The model that owns it sets
``stage_id``, ``block_index`` (position inside the stage) and ``first_in_stage``. While a
recorder is attached (``odeattn.stiffness.record(model)`` does this), the block calls
``self._emit(x_t, y, phi, dt)`` once per forward with

    x_t  (B, ...)  the state the step starts from (after any projection shortcut),
    y    (B, ...)  the state after the step, x_{t+1} = x_t + dt ⊙ phi,
    phi  (B, ...)  the increment Φ(x_t) before the step size is applied,
    dt   tensor broadcastable to x_t, or a float (1.0 for a plain residual block).

A plain step (Δt = 1, no scale) may instead call ``y = self._add(x_t, phi)``, and a step with a
tensor Δt ``y = self._addcmul(x_t, dt, phi)``: a recorder with an ``add`` / ``addcmul`` method
forms y and records the same quantities in one pass (fused on CPU); one without gets ``emit``.
The recorder reduces these to per-sample scalars at once; no feature map is kept. When no
recorder is attached the cost is one attribute test.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor


class Recorder(Protocol):
    def emit(
        self, block: Recordable, x_t: Tensor, y: Tensor, phi: Tensor, dt: Tensor | float
    ) -> None: ...


class Recordable:
    """Mixin for ``nn.Module`` residual blocks that the stiffness recorder can observe."""

    stage_id: int = 0
    block_index: int = 0
    first_in_stage: bool = False
    _recorder: Recorder | None = None

    def _emit(self, x_t: Tensor, y: Tensor, phi: Tensor, dt: Tensor | float) -> None:
        rec = self._recorder
        if rec is not None:
            rec.emit(self, x_t, y, phi, dt)

    def _add(self, x_t: Tensor, phi: Tensor) -> Tensor:
        """``x_t + phi`` with the recorder attached (Δt = 1): its ``add`` if it has one, else emit."""
        rec = self._recorder
        add = getattr(rec, "add", None)
        if add is not None:
            return add(self, x_t, phi)
        y = x_t + phi
        if rec is not None:
            rec.emit(self, x_t, y, phi, 1.0)
        return y

    def _addcmul(self, x_t: Tensor, dt: Tensor, phi: Tensor) -> Tensor:
        """``torch.addcmul(x_t, dt, phi)`` with the recorder attached: its ``addcmul`` if it has
        one, else emit."""
        rec = self._recorder
        fn = getattr(rec, "addcmul", None)
        if fn is not None:
            return fn(self, x_t, dt, phi)
        y = torch.addcmul(x_t, dt, phi)
        if rec is not None:
            rec.emit(self, x_t, y, phi, dt)
        return y

    def set_position(self, stage_id: int, block_index: int) -> Any:
        """Tell the block where it sits; returns self so models can chain it."""
        self.stage_id = int(stage_id)
        self.block_index = int(block_index)
        self.first_in_stage = block_index == 0
        return self
