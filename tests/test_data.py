"""Embedded datasets, validation splits and the on-device batch transform, checked by value."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from odeattn.data import DATASETS, BatchTransform, load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_digits_is_sklearn_digits_rescaled(digits):
    from sklearn.datasets import load_digits

    ref = load_digits()
    assert digits.num_classes == 10 and digits.input_shape == (1, 8, 8)
    for s in (digits.train, digits.val, digits.test):
        assert s.x.dtype == torch.uint8 and s.y.dtype == torch.int64 and s.x.shape[1:] == (1, 8, 8)
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    # every image is one of sklearn's, with 0..16 mapped to round(v * 255 / 16)
    x = torch.cat([digits.train.x, digits.val.x, digits.test.x]).reshape(1797, 64).numpy()
    y = torch.cat([digits.train.y, digits.val.y, digits.test.y]).numpy()
    expected = np.round(ref.data * 255 / 16).astype(np.uint8)
    order = np.lexsort(np.c_[expected, ref.target].T)
    got = np.lexsort(np.c_[x, y].T)
    np.testing.assert_array_equal(x[got], expected[order])
    np.testing.assert_array_equal(y[got], ref.target[order])


def test_digits_split_is_stratified_fixed_and_seeded(digits):
    counts = np.bincount(digits.test.y.numpy(), minlength=10)
    full = np.bincount(np.r_[digits.train.y.numpy(), digits.val.y.numpy(), digits.test.y.numpy()])
    np.testing.assert_array_equal(counts, np.round(0.2 * full))  # 20 % of every class
    other = load_dataset("digits", seed=1)
    assert torch.equal(other.test.x, digits.test.x)  # the test split never moves
    assert not torch.equal(other.val.x, digits.val.x)  # the validation split follows the seed
    again = load_dataset("digits")
    assert torch.equal(again.val.x, digits.val.x) and torch.equal(again.train.y, digits.train.y)
    # validation is carved from train: disjoint index sets, same per-class share
    assert len(load_dataset("digits", val_fraction=0.0).val) == 0


def test_digits_upsampling_is_bilinear(digits):
    big = load_dataset("digits", size=16)
    assert big.input_shape == (1, 16, 16) and big.crop_pad == 2
    ref = F.interpolate(digits.test.x.float(), size=(16, 16), mode="bilinear", align_corners=False)
    # upsampling happens on the 0..255 values before rounding; allow the rounding of both steps
    assert (big.test.x.float() - ref).abs().max() <= 1.0


def test_mean_std_from_train_split(digits):
    x = digits.train.x.double() / 255
    assert digits.mean[0] == pytest.approx(x.mean().item(), rel=1e-12)
    assert digits.std[0] == pytest.approx(x.std(unbiased=False).item(), rel=1e-9)


def test_synthetic_options_and_learnable_classes():
    s = load_dataset(
        "synthetic", n_train=200, n_test=100, size=12, channels=3, num_classes=4, val_fraction=0.25
    )
    assert s.input_shape == (3, 12, 12) and s.num_classes == 4
    assert len(s.train) + len(s.val) == 200 and len(s.test) == 100
    per_class = np.bincount(np.r_[s.train.y.numpy(), s.val.y.numpy()], minlength=4)
    np.testing.assert_array_equal(
        np.bincount(s.val.y.numpy(), minlength=4), np.round(0.25 * per_class)
    )
    # nearest class mean on train classifies test well: the classes are real
    x = s.train.x.float().flatten(1)
    means = torch.stack([x[s.train.y == k].mean(0) for k in range(4)])
    pred = torch.cdist(s.test.x.float().flatten(1), means).argmin(1)
    assert (pred == s.test.y).float().mean() > 0.9


def test_unknown_names_and_options():
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'; did you mean 'cifar10'"):
        load_dataset("cifar")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['szie'\].*size"):
        load_dataset("digits", szie=16)
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.0)
    assert set(DATASETS) >= {
        "digits",
        "synthetic",
        "cifar10",
        "cifar100",
        "svhn",
        "stl10",
        "mnist",
        "fashion_mnist",
    }


# ------------------------------------------------------------------------ batch transform


def _all_views(img: torch.Tensor, pad: int, flip: bool):
    """Every crop (and flip) of one (C, H, W) uint8 image: the brute-force reference."""
    _, h, w = img.shape
    padded = F.pad(img, (pad, pad, pad, pad))
    for oy in range(2 * pad + 1):
        for ox in range(2 * pad + 1):
            v = padded[:, oy : oy + h, ox : ox + w]
            yield (oy, ox, False), v
            if flip:
                yield (oy, ox, True), v.flip(-1)


def test_crop_flip_is_a_padded_crop_of_each_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 6, 6), dtype=torch.uint8, generator=g)
    tf = BatchTransform((0.0,) * 3, (1 / 255,) * 3, crop_pad=2, flip=True)
    out = tf.augment(x, g)  # std 1/255 and mean 0: out == raw pixel values
    assert out.dtype == torch.float32 and out.shape == x.shape
    seen = set()
    for i in range(64):
        hits = [k for k, v in _all_views(x[i], 2, True) if torch.equal(v.float(), out[i])]
        assert hits, f"image {i} is not a crop/flip of its input"
        seen.update(hits)
    offsets = {(oy, ox) for oy, ox, _ in seen}
    assert len(offsets) >= 15 and {f for *_, f in seen} == {False, True}  # offsets and flips vary


def test_crop_only_never_flips_and_normalize_matches_formula():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (32, 1, 5, 5), dtype=torch.uint8, generator=g)
    raw = BatchTransform((0.0,), (1 / 255,), crop_pad=1, flip=False).augment(x, g)
    for i in range(32):
        assert any(torch.equal(v.float(), raw[i]) for _, v in _all_views(x[i], 1, False))
    mean, std = (0.2, 0.5, 0.7), (0.3, 0.25, 0.1)
    y = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8, generator=g)
    got = BatchTransform(mean, std, channels_last=True).normalize(y)
    ref = (y.double() / 255 - torch.tensor(mean).view(1, 3, 1, 1).double()) / torch.tensor(
        std
    ).view(1, 3, 1, 1).double()
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-5)
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_augment_is_reproducible_from_the_generator_state():
    x = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8)
    tf = BatchTransform((0.5,), (0.2,), crop_pad=1, flip=True)
    a = tf.augment(x, torch.Generator().manual_seed(7))
    b = tf.augment(x, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="std"):
        BatchTransform((0.5,), (0.0,))


def test_dataset_to_device_is_a_noop_on_same_device(digits):
    same = digits.to("cpu")
    assert same.train.x.data_ptr() == digits.train.x.data_ptr()
    assert same.describe()["sizes"] == {
        "train": len(digits.train),
        "val": len(digits.val),
        "test": len(digits.test),
    }
