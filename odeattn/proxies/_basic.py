"""Cheap proxies for architecture search: FLOPs, parameters, latency, TNS at init, and a screen.

* **FLOPs** are counted with :class:`torch.utils.flop_counter.FlopCounterMode` on one forward
  pass: a multiply-add is 2 FLOPs, and only matrix products and convolutions count (a
  ``Conv2d(C_in, C_out, k)`` producing an ``(N, C_out, H', W')`` map costs
  ``2·N·C_out·H'·W'·(C_in/groups)·k²``; a ``Linear(d_in, d_out)`` on N rows ``2·N·d_in·d_out``).
  Bias additions, normalisation and activations are not counted (the usual convention of
  FLOPs tables in NAS papers, which report multiply-adds).
* **Latency** is the median wall time of ``model(x)`` under ``torch.no_grad`` after warm-up.
* **TNS at initialisation** (StepNet, Def. 2) of an untrained network on one batch is a
  zero-cost score; :class:`Screen` keeps the best ``keep_fraction`` of the candidates seen so far
  (multi-fidelity screening: only kept candidates are trained) and records each decision.
* **Rank correlations** (Kendall τ-b, Spearman ρ with average ranks for ties) tell how well a
  proxy orders architectures like their trained accuracy does (zero-cost-proxy papers report them
  per search space).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from odeattn.stiffness import record_batch, tns

__all__ = [
    "Screen",
    "ScreenDecision",
    "count_flops",
    "count_params",
    "kendall_tau",
    "measure_latency",
    "select_top",
    "spearman_rho",
    "tns_at_init",
]

_DIRECTIONS = ("minimize", "maximize")


def _example_input(model: nn.Module, input_shape: Sequence[int], batch_size: int) -> torch.Tensor:
    if batch_size < 1 or not input_shape or any(int(s) < 1 for s in input_shape):
        raise ValueError(
            "`input_shape` must be a non-empty (C, H, W)-like shape of positive sizes "
            f"and `batch_size` >= 1, but got input_shape={tuple(input_shape)}, "
            f"batch_size={batch_size}"
        )
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    return torch.randn(batch_size, *(int(s) for s in input_shape), device=device, dtype=dtype)


def count_params(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; shared tensors are counted once."""
    seen = {id(p): p for p in model.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in seen.values())


def count_flops(model: nn.Module, input_shape: Sequence[int], *, batch_size: int = 1) -> int:
    """FLOPs of one eval-mode forward pass on a ``(batch_size, *input_shape)`` input (2 per MAC)."""

    x = _example_input(model, input_shape, batch_size)
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 20,
) -> dict[str, float]:
    """Wall time of an eval-mode forward pass: ``{"median_s", "p10_s", "p90_s", "repeats"}``."""
    if warmup < 0 or repeats < 1:
        raise ValueError(
            f"`warmup` must be >= 0 and `repeats` >= 1, but got warmup={warmup}, repeats={repeats}"
        )
    x = _example_input(model, input_shape, batch_size)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.no_grad():
            for i in range(warmup + repeats):
                sync()
                start = time.perf_counter()
                model(x)
                sync()
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    p10, median, p90 = np.percentile(times, [10, 50, 90])
    return {
        "median_s": float(median),
        "p10_s": float(p10),
        "p90_s": float(p90),
        "repeats": float(repeats),
        "batch_size": float(batch_size),
    }


def tns_at_init(
    model: nn.Module, x: torch.Tensor, *, kind: str = "step", bn_mode: str = "train"
) -> float:
    """TNS (StepNet Def. 2) of the model's feature trajectory on the batch ``x``, no training.

    ``bn_mode="train"`` normalises with the batch statistics (running statistics of an untrained
    network are meaningless) and restores every buffer afterwards, so the model is unchanged.
    """

    return float(tns(*record_batch(model, x, kind=kind, bn_mode=bn_mode)))


@dataclass(frozen=True)
class ScreenDecision:
    """One screen decision; ``as_user_attrs()`` gives what a trial stores in the study."""

    score: float
    rank: int  # 1 = best among the n_seen candidates (this one included); ties share a rank
    n_seen: int
    n_keep: int  # how many of the n_seen fit in the kept fraction
    kept: bool
    reason: str

    def as_user_attrs(self, prefix: str = "screen_") -> dict[str, Any]:
        return {prefix + k: v for k, v in asdict(self).items()}


class Screen:
    """Keep a candidate when its score is among the best ``keep_fraction`` of those seen so far.

    ``decide(score, history)`` is stateless (``history`` = the scores of earlier candidates, e.g.
    read from the study), so parallel workers agree. A candidate is kept when its rank (1 +
    number of strictly better scores) is at most ``max(min_keep, ceil(keep_fraction·n_seen))``;
    the first ``warmup`` candidates are always kept; a non-finite score is never kept.
    """

    def __init__(
        self,
        keep_fraction: float,
        *,
        direction: str = "minimize",
        warmup: int = 0,
        min_keep: int = 1,
    ) -> None:
        if not 0.0 < keep_fraction <= 1.0:
            raise ValueError(
                f"`keep_fraction` must be in (0, 1], but got keep_fraction={keep_fraction}"
            )
        if direction not in _DIRECTIONS:
            raise ValueError(
                f"`direction` must be one of {list(_DIRECTIONS)}, but got {direction!r}"
            )
        if warmup < 0 or min_keep < 1:
            raise ValueError(
                f"`warmup` must be >= 0 and `min_keep` >= 1, but got warmup={warmup}, "
                f"min_keep={min_keep}"
            )
        self.keep_fraction, self.direction = float(keep_fraction), direction
        self.warmup, self.min_keep = int(warmup), int(min_keep)

    def decide(self, score: float, history: Sequence[float] = ()) -> ScreenDecision:
        past = np.asarray([h for h in history if math.isfinite(h)], dtype=np.float64)
        n_seen = past.size + 1
        n_keep = max(self.min_keep, math.ceil(self.keep_fraction * n_seen))
        if not math.isfinite(score):
            return ScreenDecision(float(score), n_seen, n_seen, n_keep, False, "non-finite score")
        sign = 1.0 if self.direction == "minimize" else -1.0
        rank = 1 + int(np.sum(sign * past < sign * score))
        if past.size < self.warmup:
            return ScreenDecision(float(score), rank, n_seen, n_keep, True, "warm-up")
        kept = rank <= n_keep
        reason = f"rank {rank} of {n_seen} {'<=' if kept else '>'} {n_keep} kept"
        return ScreenDecision(float(score), rank, n_seen, n_keep, kept, reason)


def select_top(
    scores: Sequence[float], keep_fraction: float, *, direction: str = "minimize", min_keep: int = 1
) -> list[bool]:
    """Batch screen: mask of the best ``max(min_keep, ceil(keep_fraction·n))`` finite scores.

    Ties are broken by position (earlier first); non-finite scores are never kept.
    """
    Screen(keep_fraction, direction=direction, min_keep=min_keep)  # validates the arguments
    values = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(values)
    n_keep = min(int(finite.sum()), max(min_keep, math.ceil(keep_fraction * values.size)))
    key = np.where(finite, values if direction == "minimize" else -values, np.inf)
    order = np.argsort(key, kind="stable")[:n_keep]
    mask = np.zeros(values.size, dtype=bool)
    mask[order] = True
    return mask.tolist()


def _pair(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if a.size != b.size or a.size < 2:
        raise ValueError(
            f"`x` and `y` must have the same length >= 2, but got {a.size} and {b.size}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("`x` and `y` must be finite; drop NaN/inf pairs first")
    return a, b


def _average_ranks(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(a.size, dtype=np.float64)
    sorted_a = a[order]
    start = 0
    for end in range(1, a.size + 1):  # runs of equal values get the mean of their 1-based ranks
        if end == a.size or sorted_a[end] != sorted_a[start]:
            ranks[order[start:end]] = 0.5 * (start + end - 1) + 1.0
            start = end
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ: Pearson correlation of the average ranks (NaN when a side is constant)."""
    a, b = _pair(x, y)
    ra, rb = _average_ranks(a) - (a.size + 1) / 2, _average_ranks(b) - (b.size + 1) / 2
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / denom if denom > 0 else float("nan")


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b = (C − D) / sqrt((n0 − n1)(n0 − n2)), ties handled (NaN when a side is constant)."""
    a, b = _pair(x, y)
    concordant_minus_discordant, ties_a, ties_b = 0.0, 0, 0
    for i in range(a.size - 1):  # O(n²) time, O(n) memory
        da, db = np.sign(a[i + 1 :] - a[i]), np.sign(b[i + 1 :] - b[i])
        concordant_minus_discordant += float(np.sum(da * db))
        ties_a += int(np.sum(da == 0))
        ties_b += int(np.sum(db == 0))
    n0 = a.size * (a.size - 1) // 2
    denom = math.sqrt(float(n0 - ties_a) * float(n0 - ties_b))
    return concordant_minus_discordant / denom if denom > 0 else float("nan")
