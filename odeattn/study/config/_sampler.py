"""The study's sampler: which Optuna sampler, its seed and keyword arguments, and its window.

``history`` (tpe, gp; issue 20): the sampler sees only the most recent ``history`` finished
trials (and the running ones after the oldest of them), so its cost per ask stops growing with
the study. TPE fits its Parzen estimators to every finished trial at every ask (for several
objectives after a non-dominated sort): measured ~0.1 s per ask at 100 finished trials and
~7 s at 10,000 (3 objectives; ``benchmarks/README.md``, "The search at scale"). ``None``: every
trial, Optuna's behaviour.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from odeattn.study.config._base import _Base, _KeyedError

__all__ = ["SamplerCfg"]


class SamplerCfg(_Base):
    name: Literal["tpe", "nsga2", "nsga3", "gp", "random", "grid", "reinforce"] = "tpe"  # issue 19
    seed: int | None = 0
    kwargs: dict[str, Any] = Field(default_factory=dict)
    history: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _history(self) -> SamplerCfg:
        if self.history is None:
            return self
        if self.name not in ("tpe", "gp"):
            raise _KeyedError(
                "sampler.history",
                f"`sampler.history` must go with tpe or gp (samplers whose ask reads every "
                f"finished trial), but got name={self.name!r}; remove history, or use name: tpe",
            )
        startup = int(self.kwargs.get("n_startup_trials", 10))  # both default to 10
        if self.history <= startup:
            raise _KeyedError(
                "sampler.history",
                f"`sampler.history` must exceed the sampler's n_startup_trials ({startup}), but "
                f"got history={self.history}; did you mean history: {max(1000, startup + 1)}?",
            )
        return self
