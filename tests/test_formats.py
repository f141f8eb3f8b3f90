"""Standard-format loaders read files written here in the published formats, byte for byte.

Each test writes a few images in the real on-disk layout (CIFAR binary / python pickles, SVHN
.mat, STL-10 column-major binary, IDX gz and plain) and checks shapes, dtypes, pixel values and
labels exactly; truncated, corrupt and missing files must raise DatasetFileError naming the file,
where it was looked for and where the dataset is published.
"""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch

from odeattn.data import DatasetFileError, load_dataset

RNG = np.random.default_rng(0)


def _images(n, c, h, w):
    return RNG.integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def _load(name, root, **kw):
    return load_dataset(name, root, val_fraction=0.0, **kw)


def _check(data, xtr, ytr, xte, yte):
    assert data.train.x.dtype == torch.uint8 and data.train.y.dtype == torch.int64
    assert data.test.x.dtype == torch.uint8 and data.test.y.dtype == torch.int64
    assert tuple(data.train.x.shape) == xtr.shape and tuple(data.test.x.shape) == xte.shape
    np.testing.assert_array_equal(data.train.x.numpy(), xtr)
    np.testing.assert_array_equal(data.train.y.numpy(), ytr)
    np.testing.assert_array_equal(data.test.x.numpy(), xte)
    np.testing.assert_array_equal(data.test.y.numpy(), yte)
    assert len(data.val) == 0


# --------------------------------------------------------------------------------------- CIFAR


def _write_cifar10_bin(d, per_batch=3, n_test=4):
    d.mkdir(parents=True)
    xs, ys = [], []
    for i in range(1, 6):
        x, y = _images(per_batch, 3, 32, 32), RNG.integers(0, 10, per_batch).astype(np.uint8)
        rec = np.concatenate([y[:, None], x.reshape(per_batch, -1)], axis=1)
        (d / f"data_batch_{i}.bin").write_bytes(rec.tobytes())
        xs.append(x)
        ys.append(y)
    xt, yt = _images(n_test, 3, 32, 32), RNG.integers(0, 10, n_test).astype(np.uint8)
    (d / "test_batch.bin").write_bytes(
        np.concatenate([yt[:, None], xt.reshape(n_test, -1)], 1).tobytes()
    )
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64), xt, yt.astype(np.int64)


def test_cifar10_binary(tmp_path):
    xtr, ytr, xte, yte = _write_cifar10_bin(tmp_path / "cifar-10-batches-bin")
    data = _load("cifar10", tmp_path)
    _check(data, xtr, ytr, xte, yte)
    assert data.num_classes == 10 and data.input_shape == (3, 32, 32)
    assert data.mean == (0.4914, 0.4822, 0.4465) and data.std == (0.2023, 0.1994, 0.2010)
    assert (data.crop_pad, data.flip) == (4, True)


def test_cifar100_binary_reads_fine_label(tmp_path):
    d = tmp_path / "cifar-100-binary"
    d.mkdir()
    parts = []
    for fname, n in (("train.bin", 5), ("test.bin", 3)):
        x = _images(n, 3, 32, 32)
        coarse, fine = RNG.integers(0, 20, n), RNG.integers(0, 100, n)
        rec = np.concatenate([coarse[:, None], fine[:, None], x.reshape(n, -1)], 1).astype(np.uint8)
        (d / fname).write_bytes(rec.tobytes())
        parts += [x, fine.astype(np.int64)]
    data = _load("cifar100", tmp_path)
    _check(data, *parts)
    assert data.num_classes == 100


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar10_python_version(tmp_path, protocol):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    xs, ys = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x, y = _images(2, 3, 32, 32), [int(v) for v in RNG.integers(0, 10, 2)]
        batch = {
            b"batch_label": b"x",
            b"labels": y,
            b"data": x.reshape(2, -1),
            b"filenames": [b"a", b"b"],
        }
        (d / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        xs.append(x)
        ys.append(np.array(y, dtype=np.int64))
    _check(_load("cifar10", tmp_path), np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5])


def test_cifar100_python_version(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    parts = []
    for name, n in (("train", 4), ("test", 2)):
        x, fine = _images(n, 3, 32, 32), [int(v) for v in RNG.integers(0, 100, n)]
        batch = {b"data": x.reshape(n, -1), b"fine_labels": fine, b"coarse_labels": [0] * n}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
        parts += [x, np.array(fine, dtype=np.int64)]
    _check(_load("cifar100", tmp_path), *parts)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_cifar_python_refuses_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (d / name).write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(DatasetFileError, match=r"data_batch_1.*refusing to load global.*system"):
        _load("cifar10", tmp_path)
    assert not (tmp_path / "PWNED").exists()


def test_cifar_binary_truncated(tmp_path):
    _write_cifar10_bin(tmp_path / "cifar-10-batches-bin")
    f = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(DatasetFileError, match=r"data_batch_3\.bin.*truncated.*cs\.toronto\.edu"):
        _load("cifar10", tmp_path)


def test_cifar_missing_file_names_file_place_and_url(tmp_path):
    _write_cifar10_bin(tmp_path / "cifar-10-batches-bin")
    (tmp_path / "cifar-10-batches-bin" / "data_batch_4.bin").unlink()
    with pytest.raises(DatasetFileError) as e:
        _load("cifar10", tmp_path)
    msg = str(e.value)
    assert "'data_batch_4.bin' not found" in msg
    assert str(tmp_path / "cifar-10-batches-bin") in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in msg and "ODEATTN_DATA" in msg


def test_root_from_environment(tmp_path, monkeypatch):
    xtr, ytr, xte, yte = _write_cifar10_bin(tmp_path / "cifar-10-batches-bin")
    monkeypatch.setenv("ODEATTN_DATA", str(tmp_path))
    _check(load_dataset("cifar10", val_fraction=0.0), xtr, ytr, xte, yte)


# ----------------------------------------------------------------------------------- SVHN, STL


def test_svhn_mat(tmp_path):
    import scipy.io

    d = tmp_path / "svhn"
    d.mkdir()
    parts = []
    for name, n in (("train_32x32.mat", 5), ("test_32x32.mat", 3)):
        X = RNG.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)  # (H, W, C, N) as published
        y = np.array([10, 1, 9, 10, 3][:n], dtype=np.uint8).reshape(n, 1)
        scipy.io.savemat(d / name, {"X": X, "y": y})
        expected = np.stack([X[:, :, :, i].transpose(2, 0, 1) for i in range(n)])  # (N, C, H, W)
        parts += [expected, np.where(y[:, 0] == 10, 0, y[:, 0]).astype(np.int64)]
    data = _load("svhn", tmp_path)
    _check(data, *parts)
    x = parts[0].astype(np.float64) / 255  # statistics of the training split
    np.testing.assert_allclose(data.mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(data.std, x.std(axis=(0, 2, 3)), rtol=1e-9)


def test_svhn_corrupt(tmp_path):
    d = tmp_path / "svhn"
    d.mkdir()
    (d / "train_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file garbage" * 3)
    (d / "test_32x32.mat").write_bytes(b"")
    with pytest.raises(DatasetFileError, match=r"train_32x32\.mat.*ufldl\.stanford\.edu"):
        _load("svhn", tmp_path)


def test_stl10_binary_column_major(tmp_path):
    d = tmp_path / "stl10_binary"
    d.mkdir()
    parts = []
    for split, n in (("train", 3), ("test", 2)):
        x = _images(n, 3, 96, 96)  # (N, C, H, W)
        # published layout: each channel plane stored column-major (Fortran order)
        (d / f"{split}_X.bin").write_bytes(x.transpose(0, 1, 3, 2).tobytes())
        y = RNG.integers(1, 11, n).astype(np.uint8)
        (d / f"{split}_y.bin").write_bytes(y.tobytes())
        parts += [x, y.astype(np.int64) - 1]
    data = _load("stl10", tmp_path)
    _check(data, *parts)
    assert data.crop_pad == 12


def test_stl10_label_count_mismatch(tmp_path):
    d = tmp_path / "stl10_binary"
    d.mkdir()
    for split in ("train", "test"):
        (d / f"{split}_X.bin").write_bytes(_images(2, 3, 96, 96).tobytes())
        (d / f"{split}_y.bin").write_bytes(bytes([1]))
    with pytest.raises(DatasetFileError, match=r"train_y\.bin.*1 labels for 2 images"):
        _load("stl10", tmp_path)


# ------------------------------------------------------------------------------------------ IDX


def _idx(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_idx(d, gz: bool, n_train=6, n_test=4):
    d.mkdir(parents=True)
    parts = []
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = RNG.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = RNG.integers(0, 10, n).astype(np.uint8)
        for name, arr in ((f"{prefix}-images-idx3-ubyte", x), (f"{prefix}-labels-idx1-ubyte", y)):
            raw = _idx(arr)
            if gz:
                (d / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (d / name).write_bytes(raw)
        parts += [x[:, None], y.astype(np.int64)]
    return parts


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx(tmp_path, gz):
    parts = _write_idx(tmp_path / "MNIST" / "raw", gz)
    data = _load("mnist", tmp_path)
    _check(data, *parts)
    assert data.mean == (0.0,) and data.std == (1.0,) and data.input_shape == (1, 28, 28)


def test_fashion_mnist_idx(tmp_path):
    parts = _write_idx(tmp_path / "fashion-mnist", gz=True)
    _check(_load("fashion_mnist", tmp_path), *parts)


def test_idx_truncated_gz(tmp_path):
    _write_idx(tmp_path / "mnist", gz=True)
    f = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-20])
    with pytest.raises(DatasetFileError, match=r"t10k-images-idx3-ubyte\.gz.*yann\.lecun\.com"):
        _load("mnist", tmp_path)


def test_idx_truncated_plain_and_bad_magic(tmp_path):
    _write_idx(tmp_path / "mnist", gz=False)
    f = tmp_path / "mnist" / "train-labels-idx1-ubyte"
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(
        DatasetFileError, match=r"train-labels-idx1-ubyte.*header .*needs.*truncated"
    ):
        _load("mnist", tmp_path)
    f.write_bytes(b"\x12\x34\x08\x01" + (6).to_bytes(4, "big") + bytes(6))
    with pytest.raises(DatasetFileError, match=r"train-labels-idx1-ubyte.*bad magic"):
        _load("mnist", tmp_path)


def test_mnist_missing(tmp_path):
    with pytest.raises(
        DatasetFileError, match=r"'train-images-idx3-ubyte' not found.*\.gz.*yann\.lecun"
    ):
        _load("mnist", tmp_path)


def test_idx_corrupt_gz_payload(tmp_path):
    _write_idx(tmp_path / "mnist", gz=True)
    f = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    raw = bytearray(f.read_bytes())
    raw[20:40] = bytes(255 - b for b in raw[20:40])  # damage the deflate stream
    f.write_bytes(bytes(raw))
    with pytest.raises(DatasetFileError, match=r"train-images-idx3-ubyte\.gz"):
        _load("mnist", tmp_path)


def test_cifar_python_garbage(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    (d / "train").write_bytes(RNG.integers(0, 256, 500, dtype=np.uint8).tobytes())
    (d / "test").write_bytes(b"")
    with pytest.raises(
        DatasetFileError, match=r"cifar100: cannot read .*train.*not a readable CIFAR python batch"
    ):
        _load("cifar100", tmp_path)
