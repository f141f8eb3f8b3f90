"""Readers for the standard on-disk formats of the image datasets odeattn trains on.

Each reader takes file paths and returns ``(x, y)`` numpy arrays: ``x`` uint8 of shape
(N, C, H, W) and ``y`` int64 of shape (N,). Readers check sizes and headers and raise
:class:`FormatError` (a ``ValueError``) with the reason when a file is truncated or not in the
expected format; :mod:`odeattn.data` adds which file was expected, where and where the
dataset is published.

Formats (as published by the dataset authors):

- CIFAR-10/100 binary: records of ``label bytes`` + 3072 bytes (1024 R, 1024 G, 1024 B, each
  32x32 row-major). CIFAR-10 has one label byte, CIFAR-100 two (coarse, fine).
- CIFAR python version: pickled dicts with ``b"data"`` (N, 3072) uint8 and ``b"labels"`` /
  ``b"fine_labels"``. Read with :class:`_SafeUnpickler`, which resolves only the few globals a
  pickled numpy uint8 array needs, so a malicious file cannot run code.
- SVHN (cropped digits, format 2): MATLAB ``.mat`` with ``X`` (32, 32, 3, N) and ``y`` (N, 1)
  where label 10 means digit 0.
- STL-10 binary: ``*_X.bin`` uint8 images of 3x96x96 stored column-major, ``*_y.bin`` labels 1..10.
- MNIST / Fashion-MNIST IDX (gzipped or not): big-endian header, magic ``0x0000080{1,3}``.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "FormatError",
    "read_cifar_binary",
    "read_cifar_python",
    "read_idx",
    "read_idx_pair",
    "read_stl10",
    "read_svhn_mat",
]


class FormatError(ValueError):
    """A data file is truncated, corrupt or not in the expected format."""


# ---------------------------------------------------------------------------------------------
# CIFAR


def read_cifar_binary(paths: list[Path], *, label_bytes: int, label_index: int, num_classes: int):
    """CIFAR binary batches -> (x (N, 3, 32, 32) uint8, y (N,) int64)."""
    record = label_bytes + 3 * 32 * 32
    xs, ys = [], []
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % record:
            raise FormatError(
                f"{path.name}: {raw.size} bytes is not a whole number of {record}-byte records "
                "(truncated or not a CIFAR binary batch)"
            )
        rows = raw.reshape(-1, record)  # (N, label_bytes + 3072)
        xs.append(rows[:, label_bytes:].reshape(-1, 3, 32, 32))
        ys.append(rows[:, label_index].astype(np.int64))
    return _checked(np.concatenate(xs), np.concatenate(ys), num_classes, paths[0].name)


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild builtin containers and plain numpy arrays, nothing else."""

    _ALLOWED = frozenset(
        {
            ("_codecs", "encode"),  # bytes pickled by Python 3 with protocol <= 2
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise FormatError(
                f"refusing to load global {module}.{name} (only numpy arrays are allowed)"
            )
        return super().find_class(module, name)


def _safe_unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        obj = _SafeUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    if not isinstance(obj, dict):
        raise FormatError(f"{path.name}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar_python(paths: list[Path], *, label_key: str, num_classes: int):
    """CIFAR python-version batches -> (x (N, 3, 32, 32) uint8, y (N,) int64), no code execution."""
    xs, ys = [], []
    for path in paths:
        try:
            batch = _safe_unpickle(path)
        except FormatError:
            raise
        except Exception as e:  # garbage makes the unpickler raise almost any type; add context
            raise FormatError(
                f"{path.name}: not a readable CIFAR python batch ({type(e).__name__}: {e})"
            ) from e
        data, labels = batch.get("data"), batch.get(label_key)
        if (
            not isinstance(data, np.ndarray)
            or data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != 3072
        ):
            raise FormatError(f"{path.name}: 'data' must be a (N, 3072) uint8 array")
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (data.shape[0],):
            raise FormatError(
                f"{path.name}: {label_key!r} has {labels.size} entries for {data.shape[0]} images"
            )
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return _checked(np.concatenate(xs), np.concatenate(ys), num_classes, paths[0].name)


# ---------------------------------------------------------------------------------------------
# SVHN, STL-10


def read_svhn_mat(path: Path):
    """SVHN format-2 ``.mat`` -> (x (N, 3, 32, 32) uint8, y (N,) int64 with 10 mapped to 0)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    except Exception as e:  # scipy raises many types for damaged files; re-raised with context
        raise FormatError(
            f"{path.name}: not a readable MATLAB file ({type(e).__name__}: {e})"
        ) from e
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
        raise FormatError(f"{path.name}: expected 'X' uint8 of shape (32, 32, 3, N) and 'y'")
    y = y.reshape(-1).astype(np.int64)
    if y.size != x.shape[3]:
        raise FormatError(f"{path.name}: 'y' has {y.size} labels for {x.shape[3]} images")
    y[y == 10] = 0
    return _checked(np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y, 10, path.name)  # (N, C, H, W)


def read_stl10(x_path: Path, y_path: Path):
    """STL-10 binary -> (x (N, 3, 96, 96) uint8, y (N,) int64 in 0..9)."""
    image = 3 * 96 * 96
    raw = np.fromfile(x_path, dtype=np.uint8)
    if raw.size == 0 or raw.size % image:
        raise FormatError(
            f"{x_path.name}: {raw.size} bytes is not a whole number of 3x96x96 images (truncated?)"
        )
    x = raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)  # stored column-major per image
    y = np.fromfile(y_path, dtype=np.uint8).astype(np.int64) - 1
    if y.size != x.shape[0]:
        raise FormatError(
            f"{y_path.name}: {y.size} labels for {x.shape[0]} images in {x_path.name} (truncated?)"
        )
    return _checked(np.ascontiguousarray(x), y, 10, y_path.name)


# ---------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (``.gz`` or plain) of unsigned bytes -> numpy array of the header's shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as e:  # gzip: truncated stream, bad magic, bad data
        raise FormatError(f"{path.name}: cannot decompress ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise FormatError(f"{path.name}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise FormatError(f"{path.name}: IDX data type 0x{raw[2]:02x} is not unsigned byte (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise FormatError(f"{path.name}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise FormatError(
            f"{path.name}: {len(raw)} bytes, but the header {shape} needs {expected} (truncated?)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_pair(images: Path, labels: Path):
    """IDX images (N, H, W) + labels (N,) -> (x (N, 1, H, W) uint8, y (N,) int64)."""
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3:
        raise FormatError(f"{images.name}: expected a 3-d IDX image array, got shape {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise FormatError(
            f"{labels.name}: {y.shape} labels for {x.shape[0]} images in {images.name}"
        )
    return _checked(x[:, None].copy(), y.astype(np.int64), 10, labels.name)


def _checked(x: np.ndarray, y: np.ndarray, num_classes: int, name: str):
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise FormatError(
            f"{name}: labels must lie in 0..{num_classes - 1}, found {y.min()}..{y.max()}"
        )
    return x, y
