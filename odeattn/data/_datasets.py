"""Datasets as uint8 tensors on the training device: embedded digits, synthetic, standard files.

``load_dataset(name)`` returns a :class:`Dataset`: uint8 images (N, C, H, W) and int64 labels for
the train / val / test splits, plus the per-channel ``mean``/``std`` used to normalise
(``(x / 255 − mean) / std``), the augmentation the papers use (random crop with zero padding,
horizontal flip) and the number of classes. Augmentation and normalisation run per batch on
the device (:mod:`odeattn.data._augment`), so the whole dataset lives on the GPU next to the model.

- ``digits``: scikit-learn's 1,797 real 8x8 handwritten digits (bundled, no download), pixel
  values 0..16 rescaled to 0..255; a fixed stratified test split (20 %, seed 0) and optional
  bilinear upsampling (``size=16``).
- ``synthetic``: a procedural 10-class set (class templates + noise) for smoke tests.
- ``cifar10``, ``cifar100``, ``svhn``, ``stl10``, ``mnist``, ``fashion_mnist``: read from local
  files in their published formats under ``root`` (or ``$ODEATTN_DATA``, else ``./data``).

The validation split is carved from train, stratified and seeded (``val_fraction``, ``seed``);
the test split is never used for selection. Mean/std follow the papers' code: CIFAR uses the
ResNet-164 (bearpaw) constants for both CIFAR-10 and -100, MNIST-type sets are not normalised
(ODE-Net), the others use statistics of their training split.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from odeattn._errors import did_you_mean, unknown_name
from odeattn.data import _files as _datafiles
from odeattn.data._builtin import digits, stratified_split, synthetic

__all__ = ["DATASETS", "Dataset", "DatasetFileError", "DatasetInfo", "Split", "load_dataset"]

DatasetFileError = _datafiles.DatasetFileError


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset: classes, image shape, normalisation and augmentation."""

    num_classes: int
    shape: tuple[int, int, int]
    mean: tuple[float, ...] | None  # None: computed from the training split
    std: tuple[float, ...] | None
    crop_pad: int
    flip: bool
    options: tuple[str, ...] = ()  # extra keyword options of load_dataset for this dataset


_CIFAR_MEAN, _CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(10, (1, 8, 8), None, None, 1, False, ("size",)),
    "synthetic": DatasetInfo(
        10,
        (1, 8, 8),
        None,
        None,
        1,
        False,
        ("n_train", "n_test", "size", "channels", "num_classes"),
    ),
    "cifar10": DatasetInfo(10, (3, 32, 32), _CIFAR_MEAN, _CIFAR_STD, 4, True),
    "cifar100": DatasetInfo(100, (3, 32, 32), _CIFAR_MEAN, _CIFAR_STD, 4, True),
    "svhn": DatasetInfo(10, (3, 32, 32), None, None, 0, False),
    "stl10": DatasetInfo(10, (3, 96, 96), None, None, 12, True),
    "mnist": DatasetInfo(10, (1, 28, 28), (0.0,), (1.0,), 4, False),
    "fashion_mnist": DatasetInfo(10, (1, 28, 28), (0.0,), (1.0,), 4, False),
}


@dataclass(frozen=True)
class Split:
    """Images ``x`` (N, C, H, W) uint8 and labels ``y`` (N,) int64 on one device."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Dataset:
    """Train / val / test splits plus how to normalise and augment them."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pad: int
    flip: bool

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.train.x.device

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset with every tensor on ``device`` (no copy if already there)."""
        moved = {
            k: Split(s.x.to(device), s.y.to(device))
            for k, s in (("train", self.train), ("val", self.val), ("test", self.test))
        }
        return dataclasses.replace(self, **moved)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (stored in checkpoints)."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "mean": list(self.mean),
            "std": list(self.std),
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
        }


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    device: torch.device | str = "cpu",
    val_fraction: float = 0.1,
    seed: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **options: Any,
) -> Dataset:
    """Load dataset ``name`` as uint8 tensors on ``device`` with a seeded validation split.

    Args:
        name: one of :data:`DATASETS`.
        root: directory holding the standard files (file datasets only); default
            ``$ODEATTN_DATA``, else ``./data``.
        val_fraction: share of the training split carved off (stratified) as validation.
        seed: seed of the validation split.
        mean, std: override the per-channel normalisation.
        **options: ``digits``: ``size`` (upsampled side, default 8); ``synthetic``: ``n_train``,
            ``n_test``, ``size``, ``channels``, ``num_classes``.

    Raises:
        ValueError: unknown name or bad option. DatasetFileError: a file is missing or corrupt.
    """
    info = _lookup(name)
    _check_options(name, info, options)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must be in [0, 1), but got val_fraction={val_fraction}")
    (xtr, ytr), (xte, yte), info = _read(name, info, root, options)
    tr, va = stratified_split(ytr, val_fraction, seed)
    train = Split(torch.from_numpy(xtr[tr]), torch.from_numpy(ytr[tr]))
    mean, std = _normalisation(info, train.x, mean, std)
    data = Dataset(
        name,
        train,
        Split(torch.from_numpy(xtr[va]), torch.from_numpy(ytr[va])),
        Split(torch.from_numpy(np.ascontiguousarray(xte)), torch.from_numpy(yte)),
        info.num_classes,
        mean,
        std,
        info.crop_pad * xtr.shape[-1] // info.shape[-1],
        info.flip,
    )
    return data.to(device)


def _read(name: str, info: DatasetInfo, root: str | os.PathLike | None, options: dict[str, Any]):
    """((x_train, y_train), (x_test, y_test), info) as numpy arrays; ``info`` updated where the
    options change it (the synthetic set's shape and classes)."""
    if name == "digits":
        return (*digits(**options), info)
    if name == "synthetic":
        train, test = synthetic(**options)
        shape, k = train[0].shape[1:], options.get("num_classes", info.num_classes)
        return train, test, dataclasses.replace(info, num_classes=k, shape=shape)
    return (*_datafiles.read(name, _root(root)), info)


def _normalisation(
    info: DatasetInfo,
    x: Tensor,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std): the user's, else the dataset's published values, else computed
    from the training split ``x``."""
    stats_mean, stats_std = info.mean, info.std
    if stats_mean is None:
        stats_mean, stats_std = _channel_stats(x)
    mean, std = tuple(mean or stats_mean), tuple(std or stats_std)
    if len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise ValueError(f"`mean`/`std` need {x.shape[1]} channel values, but got {mean=}, {std=}")
    return mean, std


def _check_options(name: str, info: DatasetInfo, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        raise TypeError(
            f"load_dataset({name!r}) got unknown option(s) {unknown}; valid: {list(info.options)}"
            + did_you_mean(unknown[0], info.options)
        )


def _lookup(name: str) -> DatasetInfo:
    if name in DATASETS:
        return DATASETS[name]
    raise unknown_name("dataset", name, DATASETS)


def _root(root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    return Path(os.environ.get("ODEATTN_DATA", "data")).expanduser()


def _channel_stats(x: Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images in [0, 1] units, float64 sums."""
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, x.shape[0], chunk):
        v = x[i : i + chunk].transpose(0, 1).reshape(c, -1).double() / 255.0  # (C, n·H·W)
        s += v.sum(1)
        s2 += (v * v).sum(1)
    n = x.numel() / c
    m = s / n
    sd = (s2 / n - m * m).clamp_min(1e-12).sqrt()
    return tuple(m.tolist()), tuple(sd.tolist())
