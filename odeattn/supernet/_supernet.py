"""A weight-sharing supernet over a ResNet: one set of weights, one path per architecture.

EAN / LTH4SA (Huang et al., arXiv 2207.07858) pre-train one network with attention wired to every
block, each mini-batch training a random subset of connections, then score connection schemes
with its weights. In the ODE view a residual block is ``x_{t+1} = x_t + Δt ⊙ Φ(x_t)`` with
``Φ = Σ b_i k_i`` from a tableau, so one set of fields f serves every method (Euler, Heun, RK4 …),
depth k runs the first k blocks of a stage, and attention is a step-size gate that is on or off.

Each path is compiled with the one compiler (``compile_step``) from the shared modules (see
:mod:`odeattn.supernet._bank`); compiled steps own no weights and are cached in a plain dict, so
``state_dict()`` holds every shared tensor once. Training (SPOS, Guo et al. 2020, "Single Path
One-Shot NAS"): in train mode ``forward(x)`` without an architecture draws one uniformly from a
seeded generator kept in the state dict (checkpoints and ``fit(resume=…)`` continue the same
draws). With ``sandwich=n`` it runs the largest, the smallest and n drawn architectures (the
sandwich rule, Yu & Huang 2019, "Universally Slimmable Networks"; BigNAS): the largest learns
from the labels (``fit``'s loss on the returned logits), the others by in-place distillation
from its detached predictions, their loss entering the same backward pass (:class:`_AddLoss`),
so gradients of all paths accumulate in one ``fit`` step. In eval mode ``forward(x)`` runs
``eval_arch`` (default: the largest). Elastic width (``Choices(widths=...)``): the weights are
built at the largest width of each stage; a path at those widths runs the compiled steps, a
narrower one the leading channels of the same tensors (:mod:`odeattn.supernet._slice`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from odeattn._errors import must
from odeattn.adaptors import bind
from odeattn.compile import compile_step
from odeattn.models import create_model
from odeattn.models.blocks import PostActivation
from odeattn.proxies import count_params
from odeattn.supernet._bank import bank_key, build_adaptors, build_host, copy_path, path_pairs
from odeattn.supernet._choices import Choices
from odeattn.supernet._slice import Skeletons, run_sliced
from odeattn.supernet._space import ArchSpace, Path, extreme, sample

__all__ = ["Supernet"]


class _AddLoss(torch.autograd.Function):
    """``out`` unchanged; backward also sends gradient 1 into ``aux`` (an auxiliary loss term)."""

    @staticmethod
    def forward(ctx: Any, out: Tensor, aux: Tensor) -> Tensor:
        ctx.aux = (aux.shape, aux.dtype, aux.device)
        return out.view_as(out)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        shape, dtype, device = ctx.aux
        return grad, torch.ones(shape, dtype=dtype, device=device)


def _wide(x: Tensor) -> Tensor:
    """At least float32 (bf16 logits under autocast), float64 stays float64."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _soft_ce(logits: Tensor, teacher: Tensor) -> Tensor:
    """Cross-entropy against the teacher's probabilities (in-place distillation)."""
    return -(teacher * F.log_softmax(_wide(logits), dim=1)).sum(1).mean()


def _keys(path: Path) -> list[list[str | None]]:
    """Per stage, per block run: the adaptor bank key (label × sharing), None for Δt = 1."""
    return [
        [None if lab is None else bank_key(lab, path.sharing) for lab in g] for g in path.labels
    ]


class Supernet(nn.Module):
    """``Supernet(name, fixed, choices=Choices(...))``: the networks ``create_model(name, **fixed,
    **arch)`` for every ``arch`` the choices allow, sharing one set of weights.

    Args:
        name: a model of the ``resnet`` family (``list_models("resnet")``).
        fixed: the kwargs every architecture shares (widths, num_classes, adaptor_kw, …).
        choices: a :class:`Choices` or its dict form (:meth:`Choices.from_dict`).
        sandwich: None for SPOS (one drawn path per training forward), or n ≥ 0: largest +
            smallest + n drawn paths per training forward.
        seed: seed of the generator that draws the training paths.
    """

    def __init__(
        self,
        name: str,
        fixed: Mapping[str, Any] | None = None,
        *,
        choices: Choices | Mapping[str, Any],
        sandwich: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(choices, Choices):
            if not isinstance(choices, Mapping):
                raise must("choices", "be a Choices or its dict form", choices)
            choices = Choices.from_dict(choices)
        if sandwich is not None and (isinstance(sandwich, bool) or not isinstance(sandwich, int)):
            raise must("sandwich", "be None (SPOS) or an int ≥ 0 (random paths)", sandwich)
        if sandwich is not None and sandwich < 0:
            raise must("sandwich", "be None (SPOS) or an int ≥ 0 (random paths)", sandwich)
        self.space = ArchSpace.build(name, dict(fixed or {}), choices)
        self.study_map: Any = None  # set by from_study: the study's params <-> architectures
        self._build_weights()
        self.sandwich = sandwich
        self._gen = torch.Generator().manual_seed(int(seed))
        self._steps: dict[tuple[Any, ...], nn.Module] = {}  # compiled, no weights of their own
        self._skeletons = Skeletons(32)  # narrow paths' stand-alone models, no weights used
        self._largest = extreme(self.space, self._adaptor_size, largest=True)
        self._smallest = extreme(self.space, self._adaptor_size, largest=False)
        self.eval_arch = self._largest
        self.last_archs: list[dict[str, Any]] = []

    def _build_weights(self) -> None:
        sp = self.space
        base = {k: v for k, v in sp.fixed.items() if k not in ("adaptor", "placement", "sharing")}
        base["blocks"], base["widths"] = list(sp.blocks), list(sp.widths)  # the largest
        if sp.choices.methods:
            base["method"] = "euler"  # the tableau holds no weights: any one builds the fields
        parts, self._post = build_host(sp.name, {**base, "adaptor": None})
        self.stem, self.head = parts["stem"], parts["head"]
        self.branches, self.shortcuts = parts["branches"], parts["shortcuts"]
        self.adaptors = nn.ModuleDict()
        for a, label in zip(sp.adaptors, sp.labels):
            for sharing in sp.sharings(a) if label is not None else ():
                bank = build_adaptors(sp.name, {**base, "adaptor": a}, sharing)
                self.adaptors[bank_key(label, sharing)] = bank

    def _adaptor_size(self, label: str | None, sharing: str) -> int:
        return 0 if label is None else count_params(self.adaptors[bank_key(label, sharing)])

    def extra_repr(self) -> str:
        return f"model={self.space.name!r}, choices={self.space.choices}, sandwich={self.sandwich}"

    # -- architectures ---------------------------------------------------------------------
    def sample(self, generator: torch.Generator) -> dict[str, Any]:
        """One architecture, each dimension drawn independently and uniformly; for a supernet
        made by ``from_study``, the flat params a trial of the study stores (its space drawn
        uniformly, parameter by parameter)."""
        if self.study_map is not None:
            return self.study_map.draw(generator)
        return sample(self.space, generator)

    def _path(self, arch: Mapping[str, Any]) -> Path:
        if self.study_map is not None and self.study_map.is_params(arch):
            arch = self.study_map.to_arch(arch)
        return self.space.resolve(arch)

    def arch_of(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical architecture of ``arch`` (an architecture or, for a supernet made by
        ``from_study``, a study's flat params)."""
        return self.space.to_arch(self._path(arch))

    def params_of(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """The study's flat params of ``arch`` (a supernet made by ``from_study`` only)."""
        if self.study_map is None:
            raise ValueError("params_of needs a supernet made by from_study (no study space)")
        return self.study_map.to_params(self.arch_of(arch))

    def largest(self) -> dict[str, Any]:
        """Deepest, every attention bit on, the adaptor with most parameters, most stages."""
        return copy.deepcopy(self._largest)

    def smallest(self) -> dict[str, Any]:
        """Shallowest, no attention, the adaptor with fewest parameters, fewest stages."""
        return copy.deepcopy(self._smallest)

    @property
    def eval_arch(self) -> dict[str, Any]:
        """The architecture ``forward(x)`` runs in eval mode (``fit``'s validation)."""
        return self.space.to_arch(self._eval_path)

    @eval_arch.setter
    def eval_arch(self, arch: Mapping[str, Any]) -> None:
        self._eval_path = self._path(arch)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: Tensor, arch: Mapping[str, Any] | None = None) -> Tensor:
        """(B, C, H, W) -> (B, num_classes) logits of ``arch`` (see the class docstring for None)."""
        if arch is not None:
            return self._run(x, self._path(arch))
        if not self.training:
            return self._run(x, self._eval_path)
        if self.sandwich is None:
            self.last_archs = [self.sample(self._gen)]
            return self._run(x, self._path(self.last_archs[0]))
        drawn = [self.sample(self._gen) for _ in range(self.sandwich)]
        self.last_archs = [self.largest(), self.smallest(), *drawn]
        big = self._run(x, self._path(self.last_archs[0]))
        teacher = _wide(big.detach()).softmax(1)  # (B, K)
        aux = sum(_soft_ce(self._run(x, self._path(a)), teacher) for a in self.last_archs[1:])
        return _AddLoss.apply(big, aux)

    def _run(self, x: Tensor, path: Path) -> Tensor:
        if path.widths != self.space.widths:
            model, names = self._skeleton(path)
            return run_sliced(model, names, self._pairs(model, path), x, self.training)
        x = self.stem(x)
        for s in range(self.space.n_stages):
            x = self._stage(x, s, path)
        return self.head(x)

    def _stage(self, x: Tensor, s: int, path: Path) -> Tensor:
        keys = _keys(path)[s]  # per block: its adaptor bank, None for Δt = 1
        shared, rank = path.sharing == "stage", 0
        for i, key in enumerate(keys):
            x = self._step(s, i, path.methods[s], key, shared, rank)(x)
            rank += key is not None
        if shared:  # one bank per stage (at most): drop its recurrent state (DIA) with its graph
            for key in {k for k in keys if k is not None}:
                self.adaptors[key][s].reset()
        return x

    def _step(
        self, s: int, i: int, method: Any, key: str | None, shared: bool, rank: int
    ) -> nn.Module:
        """Block i of stage s under ``method`` with the adaptor bank ``key`` (None: Δt = 1)."""
        shortcut = getattr(self.shortcuts, f"{s}_{i}", None)  # a ModuleDict entry or None
        method = "euler" if shortcut is not None else method  # as build_stage: x_t ≠ x there
        cache = (s, i, method, key, rank if key is not None and shared else 0)
        if cache not in self._steps:
            if key is None:
                step = None
            elif shared:
                step = bind(self.adaptors[key][s], rank)  # its rank among the selected blocks
            else:
                step = self.adaptors[key][s][i]
            block = compile_step(method, self.branches[s][i], step=step, shortcut=shortcut)
            block.set_position(s, i)
            self._steps[cache] = PostActivation(block) if self._post else block
        return self._steps[cache]

    def _skeleton(self, path: Path) -> tuple[nn.Module, dict[int, list[str]]]:
        sp, ref = self.space, next(self.parameters())
        return self._skeletons.get(sp.name, sp.fixed, sp.to_arch(path), ref)

    def _pairs(self, model: nn.Module, path: Path) -> list[tuple[nn.Module, nn.Module, bool]]:
        parts = {"stem": self.stem, "head": self.head, "branches": self.branches}
        parts["shortcuts"] = self.shortcuts
        return path_pairs(model, parts, self.adaptors, _keys(path), path.sharing)

    def path_modules(self, arch: Mapping[str, Any]) -> list[nn.Module]:
        """The modules a forward of ``arch`` may call: the supernet's and, for a path narrower
        than the largest widths, those of the skeleton that runs it on slices of the shared
        tensors (a BatchNorm of it updates the leading slice of the supernet's statistics)."""
        path = self._path(arch)
        extra = [] if path.widths == self.space.widths else [*self._skeleton(path)[0].modules()]
        return [*self.modules(), *extra]

    # -- the stand-alone model and the training-draw state ---------------------------------
    def extract(self, arch: Mapping[str, Any]) -> nn.Module:
        """``create_model(name, **fixed, **arch)`` carrying this supernet's weights (same dtype,
        device and train/eval mode; a narrower width: the leading channels); its forward equals
        ``self(x, arch)``."""
        path = self._path(arch)
        model = create_model(self.space.name, **self.space.fixed, **self.space.to_arch(path))
        ref = next(self.parameters())
        model.to(device=ref.device, dtype=ref.dtype)
        copy_path(model, self._pairs(model, path))
        return model.train(self.training)

    def get_extra_state(self) -> dict[str, Tensor]:
        return {"generator": self._gen.get_state()}

    def set_extra_state(self, state: dict[str, Tensor]) -> None:
        self._gen.set_state(state["generator"].cpu())
