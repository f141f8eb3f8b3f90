"""What a trial measures besides accuracy: size, cost, attention count, and stiffness summaries.

Stiffness follows StepNet Sec. 2.2–3.1 (definitions in design.md §4): a forward pass of
``samples`` validation images under ``odeattn.stiffness.record`` gives the (N, L) NSI matrix;
``tns`` is the exact Total Neural Stiffness, ``nsi_mean`` / ``nsi_max`` the mean over samples of
the mean / max NSI along depth, ``p_hat`` the stiffness proportion at ``measure.p_hat_m``.
FLOPs and latency come from ``odeattn.proxies``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from odeattn.proxies import count_flops, measure_latency
from odeattn.stiffness import record_batch, stiffness_proportion, tns

__all__ = ["attention_blocks", "cost", "stiffness"]


def attention_blocks(arch: dict[str, Any]) -> int:
    """Blocks carrying an adaptor: ones in the placement mask; all blocks when no mask is given."""
    if not arch.get("adaptor"):
        return 0
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
        "nsi_mean": nan,
        "nsi_max": nan,
        "p_hat": nan,
        "nsi_per_block": [],
        "nsi_per_stage": {},
        "stage": [],
        "nsi_kind": kind,
    }


def stiffness(
    model: nn.Module, x: Tensor, *, kind: str, p_hat_m: tuple[float, float], bn_mode: str = "eval"
) -> dict[str, Any]:
    """NSI/TNS summary of ``model`` on the batch ``x``; model mode and buffers are restored.

    ``bn_mode="train"`` (used at initialisation, as ``odeattn.proxies.tns_at_init``) normalises
    with batch statistics, since an untrained network's running statistics are meaningless.
    """

    nsi, stage = record_batch(model, x, kind=kind, bn_mode=bn_mode, allow_empty=True)
    if not stage:  # no measurable block (one block per stage): nothing to summarise
        return _empty(kind)
    per_block = nsi.mean(0)  # (L,)
    per_stage: dict[str, float] = {}
    for s in sorted(set(stage)):
        cols = [i for i, t in enumerate(stage) if t == s]
        per_stage[str(s)] = float(nsi[:, cols].mean())
    return {
        "tns": float(tns(nsi, stage)),
        "nsi_mean": float(nsi.mean(1).mean()),
        "nsi_max": float(nsi.max(1).values.mean()),
        "p_hat": float(stiffness_proportion(nsi, stage, *p_hat_m)),
        "nsi_per_block": [float(v) for v in per_block],
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
