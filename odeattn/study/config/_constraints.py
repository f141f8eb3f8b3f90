"""Constraints of a study: floors and ceilings on measured metrics (feasible trials only).

Optuna's convention (``Trial.set_constraint``): a trial is feasible when every value c_i ≤ 0,
where c_i = min − v for a floor and v − max for a ceiling (Deb's constrained domination, as in
NSGA-II's constraint handling; TPE and GP read the same values).
"""

from __future__ import annotations

from pydantic import field_validator, model_validator

from odeattn.study.config._base import METRICS, _Base, closest

__all__ = ["ConstraintCfg"]


class ConstraintCfg(_Base):
    """A floor or a ceiling on a measured metric: trials outside it are *infeasible*. Samplers
    that take ``constraints_func`` (TPE, NSGA-II/III, GP) learn from it; for every sampler the
    front, the summary, ``best/`` and the plots keep feasible trials only (a Pareto front of a
    37 % network kept for its TNS helps no one)."""

    metric: str
    min: float | None = None
    max: float | None = None

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; {closest(v, METRICS)}")
        return v

    @model_validator(mode="after")
    def _bound(self) -> ConstraintCfg:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both, e.g. {metric: val_accuracy, min: 0.9}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"needs min <= max, but got min={self.min}, max={self.max}")
        return self

    @property
    def key(self) -> str:
        """The constraint's name in Optuna's storage, e.g. ``val_accuracy>=0.9``."""
        lo = f"{self.metric}>={self.min:g}" if self.min is not None else ""
        hi = f"{self.metric}<={self.max:g}" if self.max is not None else ""
        return ",".join(x for x in (lo, hi) if x)

    def violation(self, value: float | None) -> float:
        """≤ 0 when ``value`` satisfies the constraint (Optuna's convention), else how far off;
        a missing or non-finite value is infeasible (+inf)."""
        if value is None or value != value or value in (float("inf"), float("-inf")):
            return float("inf")
        lo = self.min - value if self.min is not None else float("-inf")
        hi = value - self.max if self.max is not None else float("-inf")
        return max(lo, hi)
