"""The ``strategy: supernet`` section of a study: one-shot search with a weight-sharing supernet.

``strategy: scratch`` (the default) trains every sampled architecture. ``strategy: supernet``
runs three steps (EAN / LTH4SA, Huang et al., arXiv 2207.07858; SPOS, Guo et al. 2020):

1. train one supernet over the study's search space (``supernet.epochs`` of the study's recipe;
   ``sandwich``: largest + smallest + ``sandwich_paths`` drawn paths per batch, else one drawn
   path, SPOS);
2. score every sampled architecture with the frozen supernet's weights after BatchNorm
   recalibration on ``recal_batches`` fixed training batches of ``recal_batch_size`` images
   (no training; each score is an Optuna trial);
3. train the ``top_k`` best (or the Pareto front, at most ``top_k``) from scratch with the
   plan's replicates, and compare supernet score and stand-alone accuracy (Kendall τ).

The controller of step 2 is the study's ``sampler`` (EAN's REINFORCE controller is ``sampler:
{name: reinforce, kwargs: {...}}``; its settings are its kwargs, one place). What a supernet
trial cannot measure is refused here (one line, exit 2): pruning and screens (nothing trains),
``train_loss``, stiffness objectives before the end (``at: init`` or an epoch), ASHA, and a
noise ceiling (step 3 retrains instead).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from odeattn.study.config._base import _Base, _KeyedError

__all__ = ["STRATEGIES", "SupernetCfg", "check_strategy", "supernet_settings"]

STRATEGIES = ("scratch", "supernet")
Strategy = Literal["scratch", "supernet"]


class SupernetCfg(_Base):
    """Settings of the three steps of ``strategy: supernet`` (see the module docstring)."""

    epochs: int | None = Field(None, ge=1)  # supernet training; default: the plan's epochs
    sandwich: bool = True  # sandwich rule (BigNAS) instead of one drawn path per batch (SPOS)
    sandwich_paths: int = Field(2, ge=0)  # drawn paths besides the largest and the smallest
    recal_batches: int = Field(20, ge=1)  # BatchNorm recalibration batches per scored path
    recal_batch_size: int = Field(64, ge=2)
    top_k: int = Field(5, ge=0)  # architectures retrained from scratch in step 3 (0: none)
    seed: int = 0  # supernet training, its path draws and the calibration batches


def _refuse(key: str, what: str) -> _KeyedError:
    return _KeyedError(key, f"{what}; change it or use strategy: scratch")


def check_strategy(study: Any) -> None:
    """Cross-checks of ``strategy`` against the rest of the study (called by StudyConfig)."""
    if study.strategy != "supernet":
        if study.supernet is not None:
            raise _KeyedError("supernet", "only read with strategy: supernet; remove it")
        return
    if study.pruning is not None:
        raise _refuse("pruning", "a supernet trial does not train, so nothing can be pruned")
    if study.screen is not None:
        raise _refuse("screen", "a supernet trial does not train, so there is nothing to screen")
    for i, o in enumerate(study.objectives):
        if o.metric == "train_loss":
            raise _refuse(f"objectives[{i}].metric", "a supernet trial has no train_loss")
        if o.at != "end":
            raise _refuse(
                f"objectives[{i}].at",
                f"a supernet trial measures its extracted network once (at: end), "
                f"but got at={o.at!r}",
            )
    if study.backend == "ray" and study.ray.scheduler == "asha":
        raise _refuse("ray.scheduler", "ASHA stops training early; a supernet trial has no epochs")
    if "noise" in study.model_fields_set and study.noise.trials not in ("auto", 0):
        raise _KeyedError(
            "noise.trials",
            "the supernet strategy retrains supernet.top_k architectures instead of measuring "
            "a noise ceiling; set noise.trials: 0 or remove noise",
        )


def supernet_settings(study: Any) -> SupernetCfg:
    """The study's ``supernet`` section, its defaults when the file has none."""
    return study.supernet if study.supernet is not None else SupernetCfg()
