"""What a trial measures besides accuracy: size, cost, attention count, and stiffness summaries.

Stiffness follows StepNet Sec. 2.2–3.1 (definitions in design.md §4): a forward pass of
``samples`` validation images under ``odeattn.stiffness.record`` gives the (N, L) NSI matrix;
``tns`` is the exact Total Neural Stiffness on the fixed evaluation set (``measure.samples``
images) and ``tns_se`` its standard error across batches of ``measure.batch`` (SE = sd of the batch
means / √B), ``nsi_mean`` / ``nsi_max`` the mean over samples of
the mean / max NSI along depth, ``p_hat`` the stiffness proportion at ``measure.p_hat_m``.
FLOPs and latency come from ``odeattn.proxies``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from odeattn.proxies import count_flops, measure_latency
from odeattn.stiffness import (
    DegenerateStageWarning,
    record_batch,
    stiffness_proportion,
    tns,
    tns_per_sample,
)

__all__ = ["attention_blocks", "cost", "stiffness"]


def attention_blocks(arch: dict[str, Any]) -> int:
    """Blocks carrying an adaptor: ones in the placement mask; all blocks when no mask is given;
    the blocks not named "none" of a per-block adaptor (a list per stage of preset names)."""
    if not arch.get("adaptor"):
        return 0
    if isinstance(arch["adaptor"], list | tuple):
        return sum(a != "none" for group in arch["adaptor"] for a in group)
    placement = arch.get("placement")
    if isinstance(placement, str):
        return placement.count("1")
    if isinstance(placement, (list, tuple)):
        return sum(bool(b) for m in placement for b in (m if isinstance(m, (list, tuple)) else [m]))
    blocks = arch.get("blocks") or ()
    return int(sum(blocks))


def _empty(kind: str) -> dict[str, Any]:
    nan = float("nan")
    return {
        "tns": nan,
        "tns_se": nan,
        "tns_n": 0,
        "nsi_mean": nan,
        "nsi_max": nan,
        "p_hat": nan,
        "nsi_per_block": [],
        "nsi_per_stage": {},
        "stage": [],
        "nsi_kind": kind,
    }


def _nsi_batches(
    model: nn.Module, x: Tensor, kind: str, batch: int, bn_mode: str
) -> tuple[Tensor, list]:
    """(N, L) NSI of every sample of ``x``, recorded one batch of ``batch`` at a time."""
    parts, stage = [], []
    for i in range(0, len(x), batch):
        nsi, stage = record_batch(
            model, x[i : i + batch], kind=kind, bn_mode=bn_mode, allow_empty=True
        )
        parts.append(nsi)
    return torch.cat(parts, 0), stage


def _batch_se(per_sample: np.ndarray, batch: int) -> float:
    """Standard error of the mean from the spread of batch means (SE = sd_batches / sqrt(B))."""
    n_b = len(per_sample) // batch
    if n_b < 2:
        return float("nan")
    means = per_sample[: n_b * batch].reshape(n_b, batch).mean(1)
    return float(means.std(ddof=1) / np.sqrt(n_b))


def stiffness(
    model: nn.Module,
    x: Tensor,
    *,
    kind: str,
    p_hat_m: tuple[float, float],
    bn_mode: str = "eval",
    batch: int | None = None,
) -> dict[str, Any]:
    """NSI/TNS summary of ``model`` on the evaluation set ``x``; model mode and buffers restored.

    ``x`` is run in batches of ``batch`` (default: all at once); ``tns`` is the exact TNS of the
    whole set (the mean of per-sample areas) and ``tns_se`` its standard error across batches.
    ``bn_mode="train"`` (used at initialisation, as ``odeattn.proxies.tns_at_init``) normalises
    with batch statistics, since an untrained network's running statistics are meaningless.
    """

    # a search by TNS or p̂ on such stages is refused at validation (odeattn.study.check_depth);
    # any other study stores TNS for the dashboard only, so no warning per trial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStageWarning)
        return _summary(model, x, kind, p_hat_m, bn_mode, batch)


def _summary(
    model: torch.nn.Module,
    x: torch.Tensor,
    kind: str,
    p_hat_m: tuple[float, float],
    bn_mode: str,
    batch: int | None,
) -> dict[str, Any]:
    nsi, stage = _nsi_batches(model, x, kind, batch or len(x), bn_mode)
    if not stage:  # no measurable block (one block per stage): nothing to summarise
        return _empty(kind)
    per_stage: dict[str, float] = {}
    for s in sorted(set(stage)):
        cols = [i for i, t in enumerate(stage) if t == s]
        per_stage[str(s)] = float(nsi[:, cols].mean())
    per_sample = np.asarray(tns_per_sample(nsi, stage), dtype=float)
    return {
        "tns": float(tns(nsi, stage)),
        "tns_se": _batch_se(per_sample, batch or len(x)),
        "tns_n": len(per_sample),
        "nsi_mean": float(nsi.mean(1).mean()),
        "nsi_max": float(nsi.max(1).values.mean()),
        "p_hat": float(stiffness_proportion(nsi, stage, *p_hat_m)),
        "nsi_per_block": [float(v) for v in nsi.mean(0)],
        "nsi_per_stage": per_stage,
        "stage": stage,
        "nsi_kind": kind,
    }


def cost(
    model: nn.Module, input_shape: tuple[int, ...], *, latency: bool, latency_batch: int
) -> dict[str, float]:
    """FLOPs of one forward pass per image and, if asked, median latency in ms (``odeattn.proxies``)."""

    out = {"flops": float(count_flops(model, input_shape))}
    if latency:
        out["latency_ms"] = (
            1e3 * measure_latency(model, input_shape, batch_size=latency_batch)["median_s"]
        )
    return out
