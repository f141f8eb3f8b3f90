"""The invocation's deadline: ``budget.timeout`` means *stop at T*, on every backend.

T = the start of this invocation + ``budget.timeout`` seconds (wall clock, so the processes of
``--workers N`` and the Ray workers of one invocation share it). The rule, stated for the user in
:class:`odeattn.study.config._study.BudgetCfg`:

* after T no trial and no noise-ceiling retrain starts;
* a trial still training at T stops at its next epoch boundary (Ray: Tune stops it at T) and is
  re-queued: failed as stale (not counted toward the budget), its parameters enqueued once, so
  the next invocation trains it again; a trial that has trained its last epoch is not stopped
  (only its measurements are left);
* a noise-ceiling retrain starts only when its expected duration (the training seconds of the
  trial it repeats) fits before T; one still training at T is stopped and not stored;
* finished trials and finished retrains are kept. The run then ends as usual (summary, exports).

:func:`stop_at` wraps a per-epoch ``report`` so that it raises :class:`DeadlinePassed` at the
first epoch boundary past T (before the last epoch); the backends catch it and re-queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Deadline", "DeadlinePassed", "clock", "stop_at"]

#: The clock of every deadline (seconds since the epoch); tests replace it.
clock: Callable[[], float] = time.time


class DeadlinePassed(Exception):
    """The invocation's ``budget.timeout`` passed while a trial or retrain was training."""


@dataclass(frozen=True)
class Deadline:
    """``at``: the wall-clock time T (``None``: no timeout). Picklable (spawned workers, Ray)."""

    at: float | None = None

    @classmethod
    def after(cls, timeout: float | None) -> Deadline:
        """The deadline ``timeout`` seconds from now (``None``: none)."""
        return cls(None if timeout is None else _now() + float(timeout))

    def passed(self) -> bool:
        return self.at is not None and _now() >= self.at

    def left(self) -> float | None:
        """Seconds until T (≥ 0), or ``None`` without a timeout."""
        return None if self.at is None else max(0.0, self.at - _now())

    def fits(self, seconds: float) -> bool:
        """Whether work of ``seconds`` started now ends by T."""
        return self.at is None or _now() + max(0.0, float(seconds)) <= self.at


def _now() -> float:
    return clock()


def stop_at(deadline: Deadline | None, report: Any, last_epoch: int) -> Any:
    """``report`` that raises :class:`DeadlinePassed` at an epoch boundary past the deadline
    (never after the last epoch); ``report`` itself when there is no deadline."""
    if deadline is None or deadline.at is None:
        return report

    def checked(epoch: int, metrics: dict[str, float]) -> bool:
        if epoch < last_epoch and deadline.passed():
            raise DeadlinePassed(f"budget.timeout passed at epoch {epoch} of {last_epoch}")
        return bool(report(epoch, metrics)) if report is not None else False

    return checked
