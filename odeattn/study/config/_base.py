"""What every schema of a study file shares: the error, the base model, the metric names.

Every model is pydantic v2 with ``extra="forbid"`` and ``frozen=True``; every problem becomes a
:class:`ConfigError` whose single-line message names the FILE, the key path
(``objectives[1].direction``) and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from odeattn._errors import did_you_mean

__all__ = [
    "DEPTH_METRICS",
    "METRICS",
    "PROXY_NAMES",
    "STIFFNESS_METRICS",
    "ConfigError",
    "Direction",
    "Scalar",
    "SearchFailed",
    "SetupError",
    "closest",
]

#: Metrics a trial measures; any of them may be an objective.
METRICS = (
    "val_accuracy",
    "val_loss",
    "train_loss",
    "params",
    "flops",
    "latency_ms",
    "attention_blocks",
    "tns",
    "nsi_mean",
    "nsi_max",
    "p_hat",
)
#: The zero-cost proxies a screen may use: the keys of ``odeattn.proxies.PROXIES`` (a test keeps
#: them equal), named here so that the schema reads without importing torch.
PROXY_NAMES = ("grad_norm", "jacob_cov", "naswot", "params", "snip", "synflow")
#: Metrics measured on the feature trajectory; they take ``at: init | end | <epochs>``.
STIFFNESS_METRICS = ("tns", "nsi_mean", "nsi_max", "p_hat")
#: Stiffness metrics that compare each block's NSI with its stage's mean: constants of the depth
#: on a stage with fewer than 3 measured blocks, so a search by them needs >= 4 blocks a stage
#: (issue 21; ``odeattn.study.check_depth``).
DEPTH_METRICS = ("tns", "p_hat")
Direction = Literal["maximize", "minimize"]
Scalar = bool | int | float | str | None


class ConfigError(ValueError):
    """A bad study or search-space file: ``FILE: key.path: what is wrong; how to fix it``."""

    def __init__(self, file: str | Path, key: str, message: str) -> None:
        self.file, self.key, self.message = str(file), key, message
        super().__init__(f"{self.file}: {key or '<top level>'}: {message}")


class SetupError(RuntimeError):
    """A trial failed before training (data, model construction, measurement set-up): the study
    itself is wrong, so the search stops (exit 2) instead of failing every trial the same way;
    the trial is not counted toward the budget."""


class SearchFailed(RuntimeError):
    """Every trial of the study failed: nothing to summarise (exit 1)."""


def closest(name: object, valid: list[str] | tuple[str, ...]) -> str:
    """'unknown X; did you mean Y? valid: ...' fragment for an unknown name."""
    hint = did_you_mean(name, valid).lstrip("; ")
    return f"{hint + ' ' if hint else ''}valid: {', '.join(map(str, valid))}"


class _Base(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False
    )  # .nan/.inf: refused


class _KeyedError(ValueError):
    """Raised inside validators to point at a key other than the validator's own location."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)
