"""One trained network per (variant, seed), measured and cached: the unit the claims are built from.

A *variant* is a set of ``create_model`` keyword arguments for a model family (default
``digits_resnet``). ``train_variant`` builds it with ``torch.manual_seed(seed)``, trains it with
the named recipe (``odeattn.train.fit``, the given epochs and seed) and measures: final validation
accuracy, parameters, adaptor parameters (the model's parameters minus those of the same model
without adaptor), TNS under both NSI definitions (StepNet Eq. 4 ``step`` and the finite
difference ``fd``), the stiffness proportion p̂(M1, M2) on a grid (StepNet Sec. 3.1, Fig. 6), the
number of measured blocks per stage, and the mean gate Δt of every block (1 without adaptor) on
the first ``samples`` validation images.

:class:`RunCache` keeps each result as JSON under ``OUT/runs/`` (with its provenance: a network
is trained on one torch thread, so its seed names it on any load), so a re-run of a claim trains
only what is missing; :meth:`RunCache.fill` trains the missing ones ``jobs`` at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from odeattn.compile import Recordable
from odeattn.data import load_dataset
from odeattn.experiments._pool import run_jobs
from odeattn.experiments._provenance import THREADS, provenance
from odeattn.models import create_model
from odeattn.proxies import count_params
from odeattn.stiffness import measured_blocks, preserved, record, stiffness_proportion_grid, tns
from odeattn.study import input_batch
from odeattn.train import RECIPES, fit

__all__ = ["DIGITS", "M1_GRID", "M2_GRID", "RunCache", "gate_means", "train_variant"]

DIGITS = ("digits_resnet", "digits", "digits", "cpu")  # the embedded setting

M1_GRID = np.round(np.linspace(0.0, 1.0, 11), 2)  # relative excess over the stage mean
M2_GRID = np.round(np.linspace(0.0, 1.0, 11), 2)  # absolute NSI floor


def _adaptor_params(family: str, kw: dict[str, Any]) -> int:
    if kw.get("adaptor") in (None, "none"):
        return 0
    plain = {
        k: v for k, v in kw.items() if k not in ("adaptor", "adaptor_kw", "placement", "sharing")
    }
    return count_params(create_model(family, **kw)) - count_params(create_model(family, **plain))


def gate_means(model: nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """Mean Δt over samples and channels of every block (1.0 where the block has no adaptor).

    One eval-mode forward pass of ``x`` with a hook on each block's ``step`` module (its adaptor,
    per block or its binding of a stage-shared one); modes and buffers are restored after.
    """
    blocks = [(n, b) for n, b in model.named_modules() if isinstance(b, Recordable)]
    seen: dict[str, float] = {}
    hooks = [
        b.step.register_forward_hook(
            lambda _m, _i, out, name=n: seen.__setitem__(name, float(out.double().mean()))
        )
        for n, b in blocks
        if isinstance(getattr(b, "step", None), nn.Module)
    ]
    try:
        with preserved(model, bn_mode="eval"), torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return [
        {
            "name": n,
            "stage": int(b.stage_id),
            "first": bool(b.first_in_stage),
            "gate": seen.get(n, 1.0),
        }
        for n, b in blocks
    ]


def _stiffness(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    model.eval()
    with torch.no_grad(), record(model) as rec:
        model(x)
    out: dict[str, Any] = {"measured_blocks": {str(k): v for k, v in measured_blocks(rec).items()}}
    for kind in ("step", "fd"):
        nsi = rec.nsi(kind)
        out[f"tns_{kind}"] = float(tns(nsi, rec.stage))
        grid = stiffness_proportion_grid(nsi, rec.stage, M1_GRID, M2_GRID)
        out[f"p_hat_{kind}"] = np.asarray(grid).tolist()
    return out


def train_variant(
    kwargs: dict[str, Any],
    seed: int,
    epochs: int,
    *,
    family: str = "digits_resnet",
    data: str = "digits",
    recipe: str = "digits",
    device: str = "cpu",
    samples: int = 256,
) -> dict[str, Any]:
    """Train one variant once and measure it (see the module docstring)."""
    bundle = load_dataset(data, val_fraction=0.2 if data == "digits" else 0.1, seed=0)
    torch.manual_seed(seed)
    model = create_model(family, num_classes=bundle.num_classes, **kwargs)
    cfg = dataclasses.replace(RECIPES[recipe].with_epochs(epochs), seed=seed, device=device)
    out = {
        "val_accuracy": float(fit(model, bundle, cfg)["val_accuracy"]),  # a fraction
        "params": count_params(model),
        "adaptor_params": _adaptor_params(family, kwargs),
    }
    x = input_batch(bundle, samples, next(model.parameters()).device)
    return out | _stiffness(model, x) | {"gates": gate_means(model, x)}


def _train_to_file(
    setting: tuple[str, str, str, str], kwargs: dict, seed: int, epochs: int, path: str
) -> None:
    """Train one run and store it whole (``.part`` first), with its provenance."""
    family, data, recipe, device = setting
    res = train_variant(
        kwargs, seed, epochs, family=family, data=data, recipe=recipe, device=device
    )
    head = {"kwargs": kwargs, "seed": seed, "epochs": epochs, "setting": list(setting)}
    tmp = Path(path).with_suffix(".part")
    tmp.write_text(json.dumps(head | res | {"provenance": provenance()}))
    tmp.replace(path)


Request = tuple[dict[str, Any], int, int]  # (variant kwargs, seed, epochs)


class RunCache:
    """``get(variant_kwargs, seed, epochs)``: the cached result, trained on first use.

    ``setting`` = (family, data, recipe, device) passed to :func:`train_variant`; ``jobs`` runs
    train at once in :meth:`fill` (one torch thread each).
    """

    def __init__(
        self, out: str | Path, setting: tuple[str, str, str, str] = DIGITS, jobs: int = 1
    ) -> None:
        self.dir, self.setting, self.jobs = Path(out) / "runs", setting, jobs
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, kwargs: dict[str, Any], seed: int, epochs: int) -> Path:
        # the thread count is part of the name: a network trained on another count is another one
        key = json.dumps(
            [*self.setting, kwargs, seed, epochs, f"threads={THREADS}"], sort_keys=True
        )
        return self.dir / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"

    def fill(self, requests: Iterable[Request]) -> None:
        """Train every missing request, ``jobs`` at a time."""
        todo: dict[Path, Request] = {}
        for kw, seed, epochs in requests:
            p = self.path(kw, seed, epochs)
            if not p.is_file():
                todo.setdefault(p, (kw, seed, epochs))
        args = [(self.setting, kw, s, e, str(p)) for p, (kw, s, e) in todo.items()]
        for _ in run_jobs(_train_to_file, args, self.jobs):
            pass

    def get(self, kwargs: dict[str, Any], seed: int, epochs: int) -> dict[str, Any]:
        path = self.path(kwargs, seed, epochs)
        if not path.is_file():
            _train_to_file(self.setting, kwargs, seed, epochs, str(path))
        return json.loads(path.read_text())
