"""From a study and a trial's params to the pieces a trial runs: model kwargs, data, train config.

``model_kwargs`` merges the study's fixed ``model.kwargs`` with the sampled ``model.*`` values;
sampled ``model.adaptor.<field>`` values extend a composable adaptor spec (a dict) or, for a
preset name, go to ``adaptor_kw``. ``num_classes`` defaults to the dataset's. Data bundles are
cached per process (a search trains hundreds of models on the same arrays).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

import torch

from odeattn.data import load_dataset
from odeattn.study._space import Decoded
from odeattn.study.config import StudyConfig
from odeattn.train import RECIPES, TrainConfig

__all__ = ["SHAPES", "config_fields", "data_for", "input_batch", "model_kwargs", "train_config"]

#: (C, H, W) and classes of the named datasets, for a synthetic batch when files are absent.
SHAPES = {
    "digits": ((1, 8, 8), 10),
    "synthetic": ((1, 8, 8), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "svhn": ((3, 32, 32), 10),
    "stl10": ((3, 96, 96), 10),
}


def model_kwargs(study: StudyConfig, decoded: Decoded, num_classes: int | None) -> dict[str, Any]:
    kw = {**study.model.kwargs, **decoded.model}
    if decoded.adaptor:
        base = kw.get("adaptor")
        if isinstance(base, dict) or base is None:
            kw["adaptor"] = {**(base or {}), **decoded.adaptor}
        elif hasattr(base, "model_dump") or dataclasses.is_dataclass(base):
            kw["adaptor"] = {**_as_dict(base), **decoded.adaptor}
        else:  # a preset name: the fields are its keyword arguments
            kw["adaptor_kw"] = {**(kw.get("adaptor_kw") or {}), **decoded.adaptor}
    if num_classes is not None and "num_classes" not in kw:
        kw["num_classes"] = num_classes
    return kw


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.model_dump() if hasattr(obj, "model_dump") else dataclasses.asdict(obj)


@lru_cache(maxsize=4)
def _load(name: str, root: str | None, val_fraction: float, seed: int, extra: tuple) -> Any:

    return load_dataset(name, root, val_fraction=val_fraction, seed=seed, **dict(extra))


def data_for(study: StudyConfig) -> Any:
    d = study.data
    return _load(d.name, d.root, d.val_fraction, d.seed, tuple(sorted(d.kwargs.items())))


def input_batch(data: Any, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The first ``n`` validation images, normalised like training, as float32 (n, C, H, W)."""
    x = data.val.x[:n].to(device)
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    mean = torch.as_tensor(data.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.as_tensor(data.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return (x.float() - mean) / std


def train_config(study: StudyConfig) -> TrainConfig:
    """The study's training config: the recipe stretched to its epochs (``train.epochs``, else
    the recipe's), ``train.overrides`` and ``train.device`` applied. Trial overrides and seeds
    come on top (``TrialPlan.train_config``); a bad value is a ``ValueError`` naming the field."""
    cfg = RECIPES[study.train.recipe]
    if study.train.epochs is not None:
        cfg = cfg.with_epochs(int(study.train.epochs))  # milestones and warm-up scale too
    upd = dict(study.train.overrides)
    if study.train.device != "auto":
        upd["device"] = study.train.device
    return dataclasses.replace(cfg, **upd)


def config_fields(cfg: TrainConfig) -> list[str]:
    """The field names of a training config (what ``train.overrides`` may set)."""
    return [f.name for f in dataclasses.fields(cfg)]
