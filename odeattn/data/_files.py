"""Where the standard dataset files live under a data root, and reading them all-or-nothing.

Every file dataset has one or more *layouts* (e.g. the CIFAR binary and python versions), each a
list of directories tried in order (the archive's own folder, torchvision's folder, the root
itself) and the exact file names of the published archive. The first directory holding every
file of a layout is read; all files are read into memory before anything is returned, so a
missing, truncated or corrupt file raises :class:`DatasetFileError` naming the file, the
directories searched and where the dataset is published — never a half-loaded dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odeattn.data import _formats

__all__ = ["SOURCES", "DatasetFileError", "read"]


class DatasetFileError(OSError):
    """A dataset file is missing, truncated or corrupt (message says which, where, and the URL)."""


Reader = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Layout:
    version: str
    dirs: tuple[str, ...]
    train: tuple[str, ...]
    test: tuple[str, ...]
    reader: Reader  # reader(*paths) -> (x, y)
    gz_ok: bool = False  # each file may also be present as NAME.gz


def _cifar_bin(label_bytes: int, label_index: int, classes: int) -> Reader:
    return lambda *p: _formats.read_cifar_binary(
        list(p), label_bytes=label_bytes, label_index=label_index, num_classes=classes
    )


def _cifar_py(key: str, classes: int) -> Reader:
    return lambda *p: _formats.read_cifar_python(list(p), label_key=key, num_classes=classes)


def _idx(name: str, dirs: tuple[str, ...], url: str) -> tuple[str, list[Layout]]:
    files = (
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    )
    return url, [Layout("IDX", dirs, files[0], files[1], _formats.read_idx_pair, gz_ok=True)]


_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
SOURCES: dict[str, tuple[str, list[Layout]]] = {
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/cifar.html",
        [
            Layout(
                "binary",
                ("cifar-10-batches-bin",),
                tuple(f"{b}.bin" for b in _BATCHES),
                ("test_batch.bin",),
                _cifar_bin(1, 0, 10),
            ),
            Layout(
                "python",
                ("cifar-10-batches-py",),
                _BATCHES,
                ("test_batch",),
                _cifar_py("labels", 10),
            ),
        ],
    ),
    "cifar100": (
        "https://www.cs.toronto.edu/~kriz/cifar.html",
        [
            Layout(
                "binary",
                ("cifar-100-binary",),
                ("train.bin",),
                ("test.bin",),
                _cifar_bin(2, 1, 100),
            ),
            Layout(
                "python",
                ("cifar-100-python",),
                ("train",),
                ("test",),
                _cifar_py("fine_labels", 100),
            ),
        ],
    ),
    "svhn": (
        "http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits)",
        [
            Layout(
                ".mat",
                ("svhn", "SVHN"),
                ("train_32x32.mat",),
                ("test_32x32.mat",),
                _formats.read_svhn_mat,
            ),
        ],
    ),
    "stl10": (
        "https://cs.stanford.edu/~acoates/stl10/ (binary version)",
        [
            Layout(
                "binary",
                ("stl10_binary",),
                ("train_X.bin", "train_y.bin"),
                ("test_X.bin", "test_y.bin"),
                _formats.read_stl10,
            ),
        ],
    ),
    "mnist": _idx("mnist", ("MNIST/raw", "mnist", "MNIST"), "http://yann.lecun.com/exdb/mnist/"),
    "fashion_mnist": _idx(
        "fashion_mnist",
        ("FashionMNIST/raw", "fashion-mnist", "fashion_mnist"),
        "https://github.com/zalandoresearch/fashion-mnist",
    ),
}


def read(
    name: str, root: Path
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Read ``name``'s train and test arrays from the first complete layout under ``root``."""
    url, layouts = SOURCES[name]
    layout, paths = _locate(name, root, url, layouts)
    n = len(layout.train)
    out = []
    for part in (paths[:n], paths[n:]):
        try:
            out.append(layout.reader(*part))
        except (_formats.FormatError, OSError) as e:
            raise DatasetFileError(
                f"{name}: cannot read {_which(e, part)} ({e}); the file looks truncated or corrupt: "
                f"replace it with the {layout.version} version from {url}"
            ) from e
    return out[0], out[1]


def _which(err: Exception, paths: list[Path]) -> str:
    for p in paths:
        if p.name in str(err):
            return str(p)
    return ", ".join(str(p) for p in paths)


def _candidates(root: Path, layout: Layout) -> list[Path]:
    return [root / d for d in layout.dirs] + [root]


def _resolve(directory: Path, layout: Layout, fname: str) -> Path | None:
    for candidate in (fname, fname + ".gz") if layout.gz_ok else (fname,):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def _locate(name: str, root: Path, url: str, layouts: list[Layout]) -> tuple[Layout, list[Path]]:
    best: tuple[int, Path, str] | None = None  # (files found, directory, first missing file)
    for layout in layouts:
        for directory in _candidates(root, layout):
            files = [*layout.train, *layout.test]
            found = [_resolve(directory, layout, f) for f in files]
            if all(found):
                return layout, found
            have = sum(p is not None for p in found)
            missing = files[[p is None for p in found].index(True)]
            if best is None or have > best[0]:
                best = (have, directory, missing)
    _, directory, missing = best
    where = "; ".join(
        f"{lay.version}: " + ", ".join(str(d) for d in _candidates(root, lay)) for lay in layouts
    )
    expected = " | ".join(
        f"{lay.dirs[0]}/{{{', '.join([*lay.train, *lay.test])}}}" for lay in layouts
    )
    gz = " (each may be .gz)" if layouts[0].gz_ok else ""
    raise DatasetFileError(
        f"{name}: file {missing!r} not found in {directory}. Looked in [{where}] for {expected}{gz}. "
        f"Set root= or $ODEATTN_DATA to the folder holding them; the dataset is published at {url}"
    )
