"""The Ray backend's settings of a study (``ray:``): cluster address, resources per trial, the
scheduler (ASHA, Li et al., MLSys 2020) and retries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from odeattn.study.config._base import _Base

__all__ = ["AshaCfg", "RayCfg"]


class AshaCfg(_Base):
    metric: str | None = None  # default: the first objective
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1)
    max_t: int | None = Field(None, ge=1)  # default: the training epochs


class RayCfg(_Base):
    address: str | None = None  # None: a local Ray bound to 127.0.0.1
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    max_concurrent_trials: int | None = Field(None, ge=1)
    scheduler: Literal["fifo", "asha"] = "fifo"
    asha: AshaCfg = AshaCfg()
    max_failures: int = Field(0, ge=-1)
    storage_path: str | None = None  # default runs/<study>/ray
