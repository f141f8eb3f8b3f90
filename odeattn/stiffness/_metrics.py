"""Stiffness of feature trajectories: NSI recording, exact TNS, δ and the stiffness proportion.

StepNet (ICCV 2023), Def. 1–2 and Sec. 3.1, restated exactly in design.md §4:

    NSI(x_t) = ‖(x_{t+1} − x_t) ⊘ Δ_t‖₂ / ‖x_t‖₂                       (Eq. 4, ``"step"``, default)
    NSI_fd(x_t) = ‖x_{t+1} − x_t‖₂ / ‖x_t‖₂                           (``"fd"``, plain difference)
    δ(M1, M2) = P_x[∃t: NSI_t ≥ max(μ_{s(t)} (1 + M1), M2)]             (Eq. 5)
    TNS = ∬_{M1, M2 ≥ 0} δ(M) dM
    p̂(M) = (1/L) E_x #{t : NSI_t ≥ max(μ_{s(t)} (1 + M1), M2)}

``nsi`` is an (N, L) array-like (numpy or torch) of per-sample NSI over the L measured blocks and
``stage`` a length-L sequence of stage ids. μ_s is the mean NSI of the measured blocks of stage s,
per sample (``mu="sample"``, the paper's reading and the default) or over the whole data set
(``mu="dataset"``: one μ_s for all samples, the mean of NSI over samples and blocks of stage s).

TNS is computed exactly (see :mod:`odeattn.stiffness._tns`); :func:`tns_grid` integrates δ on a grid only to
show convergence. Properties: TNS is invariant to permuting samples and to permuting blocks within
a stage; it is positively homogeneous, ``tns(c * nsi) == c * tns(nsi)`` for c > 0 (the M1 side is
scale-free, the M2 side scales with NSI); per sample it is at most (L_s − 1) · max_t NSI_t with
``mu="sample"`` (since NSI_t ≤ L_s μ_s), hence finite for any finite input (Theorem 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from odeattn.stiffness import _tns
from odeattn.stiffness._depth import warn_degenerate

__all__ = [
    "delta",
    "delta_grid",
    "stage_means",
    "stiffness_proportion",
    "stiffness_proportion_grid",
    "tns",
    "tns_grid",
    "tns_per_sample",
]

_CHUNK = 1 << 22  # elements per temporary (N, L, K) / (N, K) block


def tns(nsi: Any, stage: Sequence[Any], *, mu: str = "sample") -> float:
    """Total Neural Stiffness, exact: the mean over samples of the area where Eq. 5's indicator is 1.

    Warns (:class:`~odeattn.stiffness.DegenerateStageWarning`) when a stage has fewer than 3
    measured blocks: such a stage adds a constant (see :func:`~odeattn.stiffness.degenerate_stages`).
    """
    warn_degenerate(stage, "TNS")
    return float(_tns.tns_per_sample(nsi, stage, mu).mean())


def tns_per_sample(nsi: Any, stage: Sequence[Any], *, mu: str = "sample") -> np.ndarray:
    """Per-sample TNS contribution (the area of its indicator region); shape (N,). Warns as
    :func:`tns` does."""
    warn_degenerate(stage, "TNS")
    return _tns.tns_per_sample(nsi, stage, mu)


def stage_means(
    nsi: Any, stage: Sequence[Any], *, mu: str = "sample"
) -> tuple[np.ndarray, list[Any]]:
    """μ per stage: ((N, S) or (1, S) for ``mu="dataset"``, sorted stage ids)."""
    z = _tns.as_nsi(nsi)
    inv, ids = _tns.stage_index(stage, z.shape[1])
    return _tns.stage_mu(z, inv, len(ids), mu), ids


def _prepare(nsi: Any, stage: Sequence[Any], mu: str) -> tuple[np.ndarray, np.ndarray]:
    z = _tns.as_nsi(nsi)
    inv, ids = _tns.stage_index(stage, z.shape[1])
    return z, np.broadcast_to(_tns.ratios(z, inv, len(ids), mu), z.shape)


def _pairs(m1: Any, m2: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    a, b = np.broadcast_arrays(
        _tns.as_levels(m1, "m1").reshape(np.shape(m1)),
        _tns.as_levels(m2, "m2").reshape(np.shape(m2)),
    )
    return a.reshape(-1), b.reshape(-1), a.shape


def _shaped(values: np.ndarray, shape: tuple[int, ...]) -> float | np.ndarray:
    out = values.reshape(shape)
    return float(out) if out.ndim == 0 else out


def delta(
    nsi: Any, stage: Sequence[Any], m1: Any, m2: Any, *, mu: str = "sample"
) -> float | np.ndarray:
    """δ(M1, M2) of Eq. 5; ``m1`` and ``m2`` broadcast (a float for scalar inputs). Warns as
    :func:`tns` does."""
    warn_degenerate(stage, "δ")
    z, r = _prepare(nsi, stage, mu)
    a, b, shape = _pairs(m1, m2)
    step = max(1, _CHUNK // z.shape[0])
    out = [
        (_tns.staircase(z, r, a[i : i + step]) >= b[i : i + step]).mean(0)
        for i in range(0, a.size, step)
    ]
    return _shaped(np.concatenate(out), shape)


def delta_grid(
    nsi: Any, stage: Sequence[Any], m1: Any, m2: Any, *, mu: str = "sample"
) -> np.ndarray:
    """δ on the grid m1 × m2 (1-D level lists), shape (len(m1), len(m2)); vectorised via sorting.
    Warns as :func:`tns` does."""
    warn_degenerate(stage, "δ")
    z, r = _prepare(nsi, stage, mu)
    a, b = _tns.as_levels(m1, "m1"), _tns.as_levels(m2, "m2")
    h = _tns.staircase(z, r, a)  # (N, G1)
    hs = torch.from_numpy(np.ascontiguousarray(np.sort(h, axis=0).T))  # (G1, N) ascending
    levels = torch.from_numpy(np.ascontiguousarray(np.broadcast_to(b, (a.size, b.size))))
    below = torch.searchsorted(hs, levels, side="left").numpy()  # #{n: h < M2}, (G1, G2)
    return (z.shape[0] - below) / z.shape[0]


def stiffness_proportion(
    nsi: Any, stage: Sequence[Any], m1: Any, m2: Any, *, mu: str = "sample"
) -> float | np.ndarray:
    """p̂(M1, M2): expected fraction of measured blocks with NSI ≥ max(μ(1 + M1), M2).

    Warns (:class:`~odeattn.stiffness.DegenerateStageWarning`) when a stage has fewer than 3
    measured blocks: with 2, p̂(0, 0) is ½ for every network.
    """
    warn_degenerate(stage, "p̂")
    z, r = _prepare(nsi, stage, mu)
    a, b, shape = _pairs(m1, m2)
    step = max(1, _CHUNK // z.size)
    out = []
    for i in range(0, a.size, step):
        hit = (r[..., None] >= 1.0 + a[i : i + step]) & (z[..., None] >= b[i : i + step])
        out.append(hit.mean((0, 1)))  # (K,)
    return _shaped(np.concatenate(out), shape)


def stiffness_proportion_grid(
    nsi: Any, stage: Sequence[Any], m1: Any, m2: Any, *, mu: str = "sample"
) -> np.ndarray:
    """p̂ on the grid m1 × m2, shape (len(m1), len(m2)); one indicator matrix product. Warns as
    :func:`stiffness_proportion` does."""
    warn_degenerate(stage, "p̂")
    z, r = _prepare(nsi, stage, mu)
    a, b = _tns.as_levels(m1, "m1"), _tns.as_levels(m2, "m2")
    zf, rf = z.reshape(-1, 1), r.reshape(-1, 1)  # (N·L, 1)
    total = np.zeros((a.size, b.size))
    step = max(1, _CHUNK // max(a.size, b.size))
    for i in range(0, zf.shape[0], step):
        hit_a = (rf[i : i + step] >= 1.0 + a).astype(np.float64)  # (chunk, G1)
        hit_b = (zf[i : i + step] >= b).astype(np.float64)  # (chunk, G2)
        total += hit_a.T @ hit_b
    return total / z.size


def tns_grid(
    nsi: Any, stage: Sequence[Any], *, resolution: int | tuple[int, int] = 200, mu: str = "sample"
) -> float:
    """TNS by the midpoint rule on a resolution₁ × resolution₂ grid over the support of δ.

    The support is [0, max(NSI/μ) − 1] × [0, max NSI]; δ is piecewise constant, so the error falls
    like 1/resolution. For plots and for checking :func:`tns`, which is exact and much faster.
    """
    n1, n2 = (resolution, resolution) if isinstance(resolution, int) else resolution
    if int(n1) < 1 or int(n2) < 1:
        raise ValueError(f"`resolution` must be >= 1 per axis, but got resolution={resolution!r}")
    z, r = _prepare(nsi, stage, mu)
    a_max = float(np.where(z > 0, r - 1.0, 0.0).max(initial=0.0))
    b_max = float(z.max())
    if a_max <= 0.0 or b_max == 0.0:
        return 0.0
    m1 = (np.arange(n1) + 0.5) * (a_max / n1)
    m2 = (np.arange(n2) + 0.5) * (b_max / n2)
    return float(delta_grid(z, stage, m1, m2, mu=mu).sum() * (a_max / n1) * (b_max / n2))
