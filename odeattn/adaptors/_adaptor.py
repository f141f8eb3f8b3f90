"""The adaptor module: Δt = gate(process(extract(inputs(x_t, Φ)))), StepNet Eq. 7/12, DIA Eq. 2.

Called as ``dt = adaptor(x_t, phi, index=0)`` by a compiled step (odeattn.compile) with x_t the
state the step starts from and phi = Φ(x_t) the residual branch; it returns Δt ∈ (0, 1)
broadcastable to x_t: (B, C, 1, 1) for channel attention, (B, 1, H, W) or (B, C, H, W) for spatial.

Sharing (DIA). An adaptor built with ``shared_blocks=n`` is ONE module for the n blocks of a
stage: its parameters exist once, ``index`` is the block's position among the blocks it serves
(with an LTH4SA placement: its rank among the selected blocks), BatchNorms inside it are kept per block (``index`` picks the block's own; DIA paper
Sec. 7.3.2), recurrent state is reset at ``index == 0`` and carried to ``index + 1``. After the last
served block (index n − 1) the state is dropped so no autograd graph outlives the forward pass.
Without ``shared_blocks`` the adaptor serves one block and carries nothing: every call is a first
call (a spec's ``sharing`` field is the default a model applies, see ``default_sharing``).
``bind(adaptor, index)`` wraps a shared adaptor for one block as ``compile_step(step=...)`` wants it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._extract import build_extractor
from ._gate import GATES
from ._process import build_processor
from ._spec import AdaptorSpec

__all__ = ["Adaptor", "BoundAdaptor", "bind"]


class Adaptor(nn.Module):
    """A step-size adaptor built from an :class:`AdaptorSpec` for ``channels`` channels."""

    def __init__(
        self,
        spec: AdaptorSpec,
        channels: int,
        *,
        shared_blocks: int | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"`channels` must be a positive int, but got channels={channels!r}")
        if shared_blocks is not None and (
            isinstance(shared_blocks, bool)
            or not isinstance(shared_blocks, int)
            or shared_blocks < 1
        ):
            raise ValueError(
                f"`shared_blocks` must be None or a positive int (the number of blocks "
                f"this stage-shared adaptor serves), but got {shared_blocks!r}"
            )
        sharing = "block" if shared_blocks is None else "stage"
        if spec.sharing != sharing:  # the spec's sharing is a default; shared_blocks decides
            spec = spec.replace(
                sharing=sharing, then=spec.then and spec.then.replace(sharing=sharing)
            )
        self.spec, self.channels, self.kind = spec, channels, kind
        self.shared_blocks = shared_blocks
        self.stage_shared = shared_blocks is not None
        hp = spec.resolved(channels)
        self.extract = build_extractor(spec.extractor, channels, hp)
        k = self.extract.descriptors * (2 if spec.inputs == "pair" else 1)
        self.process = build_processor(
            spec.processor, channels, k, hp, shared_blocks or 1, spec.gate
        )
        self.gate = GATES[spec.gate]
        self.then = Adaptor(spec.then, channels, shared_blocks=shared_blocks) if spec.then else None

    def extra_repr(self) -> str:
        name = f"kind={self.kind!r}, " if self.kind else ""
        shared = f", shared_blocks={self.shared_blocks}" if self.stage_shared else ""
        return f"{name}channels={self.channels}, inputs={self.spec.inputs!r}{shared}"

    def _descriptors(self, x_t: Tensor, phi: Tensor) -> Tensor:
        which, ex = self.spec.inputs, self.extract
        if ex.linear and which in ("next", "pair"):  # E(x_t + Φ) = E(x_t) + E(Φ)
            ex_x, ex_phi = ex(x_t), ex(phi)
            nxt = ex_x + ex_phi
            if which == "next":
                return nxt
            return _cat(ex.spatial, nxt, ex_x)
        if which == "phi":
            return ex(phi)
        if which == "x":
            return ex(x_t)
        nxt = x_t + phi
        if which == "next":
            return ex(nxt)
        if which == "diff":
            return ex(phi if ex.linear else nxt - x_t)
        return _cat(ex.spatial, ex(nxt), ex(x_t))

    def forward(self, x_t: Tensor, phi: Tensor, index: int = 0) -> Tensor:
        if not self.stage_shared:
            index = 0
        elif not 0 <= index < self.shared_blocks:
            raise IndexError(
                f"`index` must be in [0, {self.shared_blocks}) for this stage-shared "
                f"adaptor (shared_blocks={self.shared_blocks}), but got index={index}"
            )
        logits = self.process(self._descriptors(x_t, phi), index)
        dt = logits if self.process.bounded else self.gate(logits)
        if hasattr(self.process, "expand"):
            dt = self.process.expand(dt, self.channels)
        if self.then is not None:
            dt = dt * self.then(x_t, phi * dt, index)
        if self.stage_shared and index == self.shared_blocks - 1:
            self.reset()
        return dt

    def reset(self) -> None:
        """Forget recurrent state (the next call must have index 0)."""
        for m in self.modules():
            if m is not self and hasattr(m, "reset"):
                m.reset()


def _cat(spatial: bool, a: Tensor, b: Tensor) -> Tensor:
    return torch.cat((a, b), dim=1 if spatial else -1)


class BoundAdaptor(nn.Module):
    """One block's view of a (stage-shared) adaptor: ``forward(x_t, phi)`` with a fixed index."""

    def __init__(self, adaptor: nn.Module, index: int) -> None:
        super().__init__()
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"`index` must be a non-negative int, but got index={index!r}")
        n = getattr(adaptor, "shared_blocks", None)
        if n is not None and index >= n:
            raise ValueError(f"`index` must be < shared_blocks={n} of the adaptor, but got {index}")
        self.adaptor, self.index = adaptor, index
        if index > 0:  # the shared weights are saved by the index-0 binding (and the model)
            self.register_state_dict_post_hook(_drop_shared)
            self.register_load_state_dict_pre_hook(_fill_shared)

    def extra_repr(self) -> str:
        return f"index={self.index}"

    def forward(self, x_t: Tensor, phi: Tensor) -> Tensor:
        return self.adaptor(x_t, phi, index=self.index)


def _drop_shared(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "adaptor.")]:
        del state_dict[key]


def _fill_shared(module: nn.Module, state_dict: dict, prefix: str, *args: object) -> None:
    # Keys this binding did not save: feed the live tensors back, so loading is a no-op here
    # and the copy saved elsewhere (index 0 / the model's own reference) is what gets loaded.
    for key, value in module.adaptor.state_dict(keep_vars=True).items():
        state_dict[prefix + "adaptor." + key] = value


def bind(adaptor: nn.Module | None, index: int) -> BoundAdaptor | None:
    """The per-block callable for ``compile_step(step=...)``; None stays None.

    The shared module is registered in every wrapper, so ``.to()``, ``model.parameters()`` and
    optimizers see it (``parameters()`` de-duplicates by identity: counts stay exact); only the
    index-0 wrapper writes its tensors into ``state_dict()``, so a checkpoint holds the shared weights
    once per stage (twice if the model also registers the module, as odeattn's stages do).
    """
    return None if adaptor is None else BoundAdaptor(adaptor, index)
