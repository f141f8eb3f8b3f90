"""The NSI recorder: per-sample norms from every Recordable block, never the feature maps.

``with record(model) as rec: model(x)`` attaches a :class:`Recorder` to every
:class:`odeattn.compile._record.Recordable` submodule. Each block's ``_emit(x_t, y, phi, dt)`` is reduced at
once to three per-sample scalars (StepNet Eq. 4 and design.md §4):

    ‖x_t‖₂,   ‖x_{t+1} − x_t‖₂ = ‖Δt ⊙ Φ‖₂,   ‖Φ(x_t)‖₂ = ‖(x_{t+1} − x_t) ⊘ Δ_t‖₂ (step-normalised)

with norms over all non-batch dimensions; Φ is read once for scalar and channel-wise steps. They stay on the model's device (no host sync per block)
and are gathered when :meth:`Recorder.nsi` is asked. A column of the NSI matrix is one emission
position in the forward pass: the k-th call of a block within one forward (a block called several
times, e.g. a shared ODE field, gives several columns). Calls made between forwards of the root
model (a submodule called on its own) count as a forward of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from odeattn._errors import did_you_mean
from odeattn.compile import Recordable
from odeattn.stiffness._kernels import add_with_norms, addcmul_with_norms, step_norms

NSI_DEFINITIONS = {
    "step": "step-normalised NSI ‖(x_{t+1} − x_t) ⊘ Δt‖ / ‖x_t‖ (StepNet Eq. 4)",
    "fd": "finite-difference NSI ‖x_{t+1} − x_t‖ / ‖x_t‖",
}


def _norm(x: Tensor, dim: tuple[int, ...] | None = None) -> Tensor:
    """2-norm over ``dim`` (default: all non-batch dims), accumulated in at least float32."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if x.ndim == 1:
        return x.abs().to(dtype)
    return torch.linalg.vector_norm(x, dim=dim or tuple(range(1, x.ndim)), dtype=dtype)


def _step_norms(phi: Tensor, dt: Tensor | float) -> tuple[Tensor, Tensor]:
    """(‖Φ‖, ‖Δt ⊙ Φ‖) per sample, reading Φ once when Δt is a scalar or per channel.

    ‖x_{t+1} − x_t‖ is taken as ‖Δt ⊙ Φ‖ (equal by the seam's contract x_{t+1} = x_t + Δt ⊙ Φ,
    and free of the cancellation in y − x_t): a float Δt scales ‖Φ‖; a channel step
    (B, C, 1, ..., 1) uses per-channel norms n_c, ‖Δt ⊙ Φ‖² = Σ_c Δt_c² n_c²; any other shape
    forms Δt ⊙ Φ.
    """
    if not isinstance(dt, Tensor):
        n = _norm(phi)
        return n, (n if dt == 1.0 else n * abs(float(dt)))
    if phi.ndim >= 3 and dt.ndim == phi.ndim and all(s == 1 for s in dt.shape[2:]):
        dtype = torch.float64 if phi.dtype == torch.float64 else torch.float32
        # Σ over space of Φ²: a plain sum is ~3x faster than a strided norm on channels_last
        sq = phi.to(dtype).square().sum(tuple(range(2, phi.ndim)))  # (B, C)
        d2 = dt.reshape(dt.shape[0], dt.shape[1]).to(dtype).square()  # (B, C), broadcasts B = 1
        return sq.sum(1).sqrt(), (sq * d2).sum(1).sqrt()
    return _norm(phi), _norm(dt * phi)


def _row(r: tuple[Tensor, Tensor, Tensor] | Tensor) -> Tensor:
    """(B, 3) ‖x_t‖, ‖x_{t+1} − x_t‖, ‖Φ‖ from a row as filed: 3 vectors, a fused (B, 3), or a
    fused (B, 2) ‖x_t‖, ‖Φ‖ of a unit step (where ‖x_{t+1} − x_t‖ = ‖Φ‖)."""
    if isinstance(r, tuple):
        return torch.stack(r, 1)
    return r if r.shape[1] == 3 else r[:, (0, 1, 1)]


class Recorder:
    """Collects per-sample ‖x_t‖, ‖x_{t+1} − x_t‖, ‖Φ‖ for each block emission position."""

    def __init__(self, names: dict[int, str] | None = None, include_first: bool = False) -> None:
        self.include_first = bool(include_first)
        self._names = names or {}
        self._columns: dict[tuple[int, int], dict[str, Any]] = {}
        self._seen: dict[int, int] = {}  # block id -> emissions in the current forward

    def new_pass(self) -> None:
        """Start a new forward pass (called by the root model's pre-hook)."""
        self._seen.clear()

    def emit(
        self, block: Recordable, x_t: Tensor, y: Tensor, phi: Tensor, dt: Tensor | float
    ) -> None:
        with torch.no_grad():
            fused = step_norms(x_t, phi, dt) if isinstance(dt, Tensor) else None
            if fused is not None:  # channel / sample step, CPU: one read of x_t and Φ
                self._append(block, fused)
                return
            phi_norm, diff_norm = _step_norms(
                phi.detach(), dt.detach() if isinstance(dt, Tensor) else dt
            )
            self._append(block, (_norm(x_t.detach()), diff_norm, phi_norm))

    def add(self, block: Recordable, x_t: Tensor, phi: Tensor) -> Tensor:
        """``x_t + Φ`` for a plain residual step (Δt = 1), recording it as :meth:`emit` does.

        On CPU without autograd the add and both norms are one fused pass
        (:mod:`odeattn.stiffness._kernels`); ``y`` is bit-identical to ``x_t + phi`` either way.
        """
        fused = add_with_norms(x_t, phi)
        if fused is None:
            y = x_t + phi
            self.emit(block, x_t, y, phi, 1.0)
            return y
        y, xp = fused  # xp (B, 2): ‖x_t‖, ‖Φ‖ (= ‖x_{t+1} − x_t‖ for Δt = 1)
        self._append(block, xp)
        return y

    def addcmul(self, block: Recordable, x_t: Tensor, dt: Tensor, phi: Tensor) -> Tensor:
        """``torch.addcmul(x_t, dt, phi)`` for a step Δt, recording it as :meth:`emit` does; one
        fused pass on CPU without autograd for a channel / sample Δt (y bit-identical)."""
        fused = addcmul_with_norms(x_t, dt, phi)
        if fused is None:
            y = torch.addcmul(x_t, dt, phi)
            self.emit(block, x_t, y, phi, dt)
            return y
        y, row = fused  # row (B, 3): ‖x_t‖, ‖Δt ⊙ Φ‖, ‖Φ‖
        self._append(block, row)
        return y

    def _append(self, block: Recordable, row: tuple[Tensor, Tensor, Tensor] | Tensor) -> None:
        """File one emission's per-sample norms under its column (block, call index)."""
        key = (id(block), self._seen.get(id(block), 0))
        self._seen[id(block)] = key[1] + 1
        col = self._columns.get(key)
        if col is None:
            name = self._names.get(id(block), type(block).__name__)
            col = self._columns[key] = {
                "name": name if key[1] == 0 else f"{name}#{key[1]}",
                "stage": int(block.stage_id),
                "first": bool(block.first_in_stage),
                "rows": [],
            }
        col["rows"].append(row)

    def _measured(self) -> list[dict[str, Any]]:
        cols = [c for c in self._columns.values() if self.include_first or not c["first"]]
        if not cols:
            raise RuntimeError(
                "no block was recorded: run a forward pass inside `with record(model)`, and check "
                "that the model has Recordable blocks beyond the first of each stage "
                "(or pass include_first=True)"
            )
        return cols

    def norms(self) -> dict[str, Tensor]:
        """(N, L) float64 CPU tensors ``x`` = ‖x_t‖, ``diff`` = ‖x_{t+1} − x_t‖, ``phi`` = ‖Φ‖."""
        cols = self._measured()
        per = [torch.cat([_row(r) for r in c["rows"]]) for c in cols]  # each (N_c, 3)
        sizes = {p.shape[0] for p in per}
        if len(sizes) != 1:
            raise RuntimeError(
                f"blocks were called on different numbers of samples {sorted(sizes)}: a block ran "
                "a varying number of times per forward (adaptive ODE solver?); record fixed-step "
                "solves, or one forward per recorder"
            )
        m = torch.stack(per, 1).to("cpu", torch.float64)  # (N, L, 3)
        return {"x": m[..., 0], "diff": m[..., 1], "phi": m[..., 2]}

    def nsi(self, kind: str = "step") -> Tensor:
        """NSI matrix (N, L): ``"step"`` (Eq. 4, default) or ``"fd"`` (plain finite difference)."""
        if kind not in NSI_DEFINITIONS:
            hint = did_you_mean(kind, NSI_DEFINITIONS)
            raise ValueError(
                f"`kind` must be one of {list(NSI_DEFINITIONS)}, but got {kind!r}{hint}"
            )
        n = self.norms()
        return (n["phi"] if kind == "step" else n["diff"]) / n["x"]

    @property
    def measured(self) -> int:
        """How many blocks would be NSI columns (0 before any pass; never raises)."""
        return sum(1 for c in self._columns.values() if self.include_first or not c["first"])

    @property
    def stage(self) -> list[int]:
        """Stage id of each NSI column."""
        return [c["stage"] for c in self._measured()]

    @property
    def names(self) -> list[str]:
        """Qualified module name of each NSI column (``#k`` marks the k-th call in a forward)."""
        return [c["name"] for c in self._measured()]

    def clear(self) -> None:
        self._columns.clear()
        self._seen.clear()


@contextmanager
def record(model: nn.Module, include_first: bool = False) -> Iterator[Recorder]:
    """Attach a :class:`Recorder` to every Recordable block of ``model`` for the ``with`` body.

    ``rec.nsi("step" | "fd")`` gives the (N, L) NSI matrix and ``rec.stage`` its stage ids; the
    first block of each stage is left out unless ``include_first=True``. Recording reads tensors
    only (under ``torch.no_grad``), so the model's outputs and gradients are bit-for-bit unchanged.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, but got {type(model).__name__}")
    blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, Recordable)]
    if not blocks:
        raise ValueError(
            f"`model` ({type(model).__name__}) has no odeattn Recordable blocks to record; build "
            "it with odeattn.models.create_model or from odeattn.compile steps"
        )
    rec = Recorder({id(m): n or type(m).__name__ for n, m in blocks}, include_first)
    previous = [m.__dict__.get("_recorder") for _, m in blocks]
    hook = model.register_forward_pre_hook(lambda *_: rec.new_pass())
    for _, m in blocks:
        m._recorder = rec
    try:
        yield rec
    finally:
        hook.remove()
        for (_, m), prev in zip(blocks, previous):
            if prev is None:
                m.__dict__.pop("_recorder", None)
            else:
                m._recorder = prev
