"""One trained network per (variant, seed), measured and cached: the unit the claims are built from.

A *variant* is a set of ``create_model`` keyword arguments for a model family (default
``digits_resnet``). ``train_variant`` builds it with ``torch.manual_seed(seed)``, trains it with
the named recipe (``odeattn.train.fit``, the given epochs and seed) and measures: final validation
accuracy, parameters, adaptor parameters (the model's parameters minus those of the same model
without adaptor), TNS under both NSI definitions (StepNet Eq. 4 ``step`` and the finite
difference ``fd``) and the stiffness proportion p̂(M1, M2) on a grid (StepNet Sec. 3.1, Fig. 6)
on the first ``samples`` validation images. :class:`RunCache` keeps each result as JSON under
``OUT/runs/``, so a re-run of a claim trains only what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from odeattn.data import load_dataset
from odeattn.models import create_model
from odeattn.proxies import count_params
from odeattn.stiffness import record, stiffness_proportion_grid, tns
from odeattn.study import input_batch
from odeattn.train import RECIPES, fit

__all__ = ["DIGITS", "M1_GRID", "M2_GRID", "RunCache", "train_variant"]

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


def _stiffness(model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    model.eval()
    with torch.no_grad(), record(model) as rec:
        model(x)
    out: dict[str, Any] = {}
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
    return out | _stiffness(model, x)


class RunCache:
    """``get(variant_kwargs, seed, epochs)``: the cached result, trained on first use.

    ``setting`` = (family, data, recipe, device) passed to :func:`train_variant`.
    """

    def __init__(self, out: str | Path, setting: tuple[str, str, str, str] = DIGITS) -> None:
        self.dir, self.setting = Path(out) / "runs", setting
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, kwargs: dict[str, Any], seed: int, epochs: int) -> Path:
        family, *rest = self.setting
        extra = [] if self.setting == DIGITS else rest  # digits keys are those of the first runs
        key = json.dumps([family, kwargs, seed, epochs, *extra], sort_keys=True)
        return self.dir / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"

    def get(self, kwargs: dict[str, Any], seed: int, epochs: int) -> dict[str, Any]:
        path = self._path(kwargs, seed, epochs)
        if not path.is_file():
            family, data, recipe, device = self.setting
            res = train_variant(
                kwargs, seed, epochs, family=family, data=data, recipe=recipe, device=device
            )
            path.write_text(json.dumps({"kwargs": kwargs, "seed": seed, "epochs": epochs} | res))
        return json.loads(path.read_text())
