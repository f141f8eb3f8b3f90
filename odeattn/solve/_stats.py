"""Statistics of a solve (function evaluations, accepted and rejected steps) and ``last_stats()``.

The most recent solve's statistics are kept per thread (a :class:`threading.local`, not a module
list), so concurrent solves in other threads never overwrite each other's; setting it is also a
side effect ``torch.compile`` traces without a graph break (a ContextVar would break the graph).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from torch import Tensor

__all__ = ["SolveStats", "last_stats", "set_last"]


@dataclass
class SolveStats:
    """Statistics of one ``odeint`` call (``last_stats()``)."""

    method: str
    adaptive: bool
    nfe: int = 0
    accepted: int = 0
    rejected: int = 0
    accepted_per_sample: Tensor | None = None  # (B,) with options["per_sample"]; then
    rejected_per_sample: Tensor | None = None  # accepted / rejected are their sums

    @property
    def steps(self) -> int:
        return self.accepted + self.rejected


_LAST = threading.local()  # .stats: the SolveStats of this thread's most recent solve


def last_stats() -> SolveStats:
    """Statistics (``nfe``, ``accepted``, ``rejected``, ``steps``) of the most recent solve."""
    stats = getattr(_LAST, "stats", None)
    if stats is None:
        raise RuntimeError("`last_stats()` needs a finished `odeint` call first, but none ran yet")
    return stats


def set_last(stats: SolveStats) -> None:
    """Make ``stats`` what :func:`last_stats` returns in this thread."""
    _LAST.stats = stats
