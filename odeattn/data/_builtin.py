"""The two data sets built in memory (no files): scikit-learn's digits and a synthetic one, and
the seeded stratified split both they and the validation carving use.

``digits``: the 1,797 real 8×8 handwritten digits that ship with scikit-learn, scaled to uint8
(×255/16), optionally upsampled bilinearly, split 80/20 per class with a fixed seed.
``synthetic``: one smooth random template per class (fixed seed) plus uniform noise.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["DIGITS_TEST_SEED", "digits", "stratified_split", "synthetic"]

DIGITS_TEST_SEED = 0
Pair = tuple[np.ndarray, np.ndarray]  # (uint8 images (N, C, H, W), int64 labels (N,))


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): round(fraction · n_c) of each class c to val, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    val = [
        rng.permutation(np.flatnonzero(y == c))[: round(fraction * np.sum(y == c))]
        for c in np.unique(y)
    ]
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    mask = np.ones(y.shape[0], dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx


def digits(size: int = 8) -> tuple[Pair, Pair]:
    """sklearn digits -> fixed stratified 80/20 split, uint8 (N, 1, size, size)."""
    from sklearn.datasets import load_digits

    if not isinstance(size, int) or size < 8:
        raise ValueError(f"`size` must be an int >= 8 (upsampled side), but got size={size!r}")
    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().unsqueeze(1) * (255.0 / 16.0)  # (N, 1, 8, 8)
    if size != 8:
        x = torch.nn.functional.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False
        )
    x = x.round().clamp(0, 255).to(torch.uint8).numpy()
    y = bunch.target.astype(np.int64)
    tr, te = stratified_split(y, 0.2, DIGITS_TEST_SEED)
    return (x[tr], y[tr]), (x[te], y[te])


def synthetic(
    *,
    n_train: int = 512,
    n_test: int = 256,
    size: int = 8,
    channels: int = 1,
    num_classes: int = 10,
) -> tuple[Pair, Pair]:
    """Procedural classes: a smooth random template per class (fixed seed) plus uniform noise."""
    for k, v in {
        "n_train": n_train,
        "n_test": n_test,
        "size": size,
        "channels": channels,
        "num_classes": num_classes,
    }.items():
        if not isinstance(v, int) or v < (2 if k == "num_classes" else 1):
            raise ValueError(f"`{k}` must be a positive int, but got {k}={v!r}")
    g = torch.Generator().manual_seed(1234)
    coarse = torch.rand(num_classes, channels, 4, 4, generator=g)
    templates = torch.nn.functional.interpolate(
        coarse, size=(size, size), mode="bilinear", align_corners=False
    )  # (K, C, S, S)
    n = n_train + n_test
    y = torch.arange(n) % num_classes
    y = y[torch.randperm(n, generator=g)]
    x = 0.7 * templates[y] + 0.3 * torch.rand(n, channels, size, size, generator=g)
    x = (x * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    y = y.numpy().astype(np.int64)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])
