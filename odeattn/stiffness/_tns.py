"""Exact Total Neural Stiffness and the vectorised δ / p̂ machinery (StepNet Def. 2, Sec. 3.1).

For one sample with per-block NSI ζ_t and stage means μ_{s(t)}, the indicator of Eq. 5,

    I(M1, M2) = 1  ⇔  ∃t: ζ_t ≥ max(μ_{s(t)} (1 + M1), M2),      M1, M2 ≥ 0,

is 1 exactly on the union of the origin-anchored rectangles [0, a_t] × [0, b_t] with
a_t = ζ_t / μ_{s(t)} − 1 (clipped at 0) and b_t = ζ_t. The union is a staircase: sort the blocks by
a_t descending (a_(1) ≥ … ≥ a_(L) ≥ a_(L+1) := 0); over M1 ∈ (a_(k+1), a_(k)] its height is
max(b_(1), …, b_(k)), so

    area = Σ_k (a_(k) − a_(k+1)) · cummax(b)_(k),          TNS = mean over samples of area.

Everything here works on float64 numpy arrays (torch input is moved to the host once), vectorised
over samples: one argsort, one cummax and one dot product for all N samples (≈20 ms for
N = 10,000, L = 54 on one core). Thresholds are compared in the ratio
form r_t = ζ_t / μ ≥ 1 + M1 (equivalent to ζ_t ≥ μ(1 + M1) for μ > 0); a stage whose mean is 0 has
every ζ = 0 there and gets r = +inf, which is exactly what the definition gives (0 ≥ 0·(1 + M1)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from odeattn._errors import did_you_mean

MU_MODES = ("sample", "dataset")


def as_nsi(nsi: Any) -> np.ndarray:
    """Validate an (N, L) array-like of NSI values; return float64 numpy (no copy when possible)."""
    if isinstance(nsi, Tensor):
        nsi = nsi.detach().cpu().numpy()
    z = np.asarray(nsi, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(
            f"`nsi` must be a non-empty 2-D (N samples, L blocks) array, but got shape "
            f"{z.shape}; for one sample pass nsi[None, :]"
        )
    if not (np.isfinite(z).all() and z.min() >= 0):
        bad = z[~np.isfinite(z) | ~(z >= 0)][:3].tolist()
        raise ValueError(
            f"`nsi` must be finite and >= 0 (it is a ratio of norms), but got values like {bad}; "
            "a zero-norm block input gives inf — drop such samples or blocks first"
        )
    return z


def stage_index(stage: Sequence[Any] | Any, n_blocks: int) -> tuple[np.ndarray, list[Any]]:
    """Map a length-L sequence of stage ids to (inverse index (L,), sorted unique ids)."""
    arr = np.asarray(stage.detach().cpu() if isinstance(stage, Tensor) else stage)
    if arr.ndim != 1 or arr.shape[0] != n_blocks:
        raise ValueError(
            f"`stage` must be a 1-D sequence with one stage id per block (length {n_blocks}), "
            f"but got shape {arr.shape}"
        )
    ids, inv = np.unique(arr, return_inverse=True)
    return inv.reshape(-1), ids.tolist()


def check_mu(mu: str) -> str:
    if mu not in MU_MODES:
        hint = did_you_mean(mu, MU_MODES)
        raise ValueError(f"`mu` must be one of {list(MU_MODES)}, but got mu={mu!r}{hint}")
    return mu


def stage_mu(nsi: np.ndarray, inv: np.ndarray, n_stages: int, mu: str) -> np.ndarray:
    """Mean NSI of each stage: (N, S) per sample (``mu="sample"``) or (1, S) over the dataset."""
    check_mu(mu)
    order = np.argsort(inv, kind="stable")
    z = nsi if (order == np.arange(inv.size)).all() else nsi[:, order]  # stages contiguous
    counts = np.bincount(inv, minlength=n_stages)  # (S,)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    sums = np.add.reduceat(z, starts, axis=1)  # (N, S)
    if mu == "dataset":
        return sums.sum(0, keepdims=True) / (counts * nsi.shape[0])  # (1, S)
    return sums / counts


def ratios(nsi: np.ndarray, inv: np.ndarray, n_stages: int, mu: str) -> np.ndarray:
    """r_t = ζ_t / μ_{s(t)} per sample and block, (N, L); +inf where μ = 0 (then ζ = 0 too)."""
    m = stage_mu(nsi, inv, n_stages, mu)[:, inv]  # (N or 1, L)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = nsi / m
    return np.where(m > 0, r, np.inf)


def union_area(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Area of ∪_t [0, a_t] × [0, b_t] per row; a, b: (N, L) with a, b ≥ 0 and finite."""
    n, length = a.shape
    flat = (
        np.argsort(a, axis=1) + np.arange(0, n * length, length)[:, None]
    ).ravel()  # ascending in a
    a_s = a.ravel()[flat].reshape(n, length)
    height = np.maximum.accumulate(b.ravel()[flat].reshape(n, length)[:, ::-1], axis=1)[:, ::-1]
    width = a_s.copy()
    width[:, 1:] -= a_s[:, :-1]  # a_(k) − a_(k−1), a_(0) = 0: blocks k.. qualify on that span
    return np.einsum("ij,ij->i", width, height)  # (N,)


def tns_per_sample(nsi: Any, stage: Any, mu: str = "sample") -> np.ndarray:
    """Exact area of each sample's indicator region; (N,) float64."""
    z = as_nsi(nsi)
    inv, ids = stage_index(stage, z.shape[1])
    m = stage_mu(z, inv, len(ids), mu)
    # μ = 0 only when the whole stage is 0: those rectangles have no height, so r := 0 there
    m = np.where(m > 0, m, np.inf)[:, inv]  # (N or 1, L)
    a = z / m
    a -= 1.0
    np.maximum(a, 0.0, out=a)
    return union_area(a, z)


def staircase(nsi: np.ndarray, r: np.ndarray, m1: np.ndarray) -> np.ndarray:
    """h[n, k] = max{ζ_t : r_t ≥ 1 + m1[k]} (−inf if no block qualifies); (N, K).

    Eq. 5's indicator at (M1, M2) is then h(M1) ≥ M2. One sort per sample, one batched
    binary search per level.
    """
    r = np.broadcast_to(r, nsi.shape)
    order = np.argsort(r, axis=1)  # (N, L), ascending ratio
    r_asc = torch.from_numpy(np.ascontiguousarray(np.take_along_axis(r, order, 1)))
    b = np.take_along_axis(nsi, order, 1)
    suffix = np.maximum.accumulate(b[:, ::-1], axis=1)[:, ::-1]  # max(b[k:])
    suffix = np.concatenate([suffix, np.full((nsi.shape[0], 1), -np.inf)], axis=1)  # (N, L + 1)
    thr = torch.from_numpy(np.ascontiguousarray(np.broadcast_to(1.0 + m1, (nsi.shape[0], m1.size))))
    idx = torch.searchsorted(r_asc, thr, side="left").numpy()  # first r_asc ≥ 1 + M1
    return np.take_along_axis(suffix, idx, 1)


def as_levels(values: Any, name: str) -> np.ndarray:
    """Validate thresholds M ≥ 0; return them as a flat float64 array."""
    t = np.asarray(
        values.detach().cpu() if isinstance(values, Tensor) else values, dtype=np.float64
    )
    if t.size == 0 or not (np.isfinite(t).all() and t.min() >= 0):
        raise ValueError(
            f"`{name}` must be finite thresholds >= 0 (M ∈ R+ × R+), but got {name}={values!r}"
        )
    return t.reshape(-1)
