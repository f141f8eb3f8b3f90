"""Search-space files: the parameters that may vary (see ``odeattn/study/_space.py`` for how each
is sampled): floats, ints, categoricals, per-stage values, attention placements (LTH4SA) and
adaptor presets per block (``type: per_block``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from odeattn.study.config._base import Scalar, _Base

__all__ = [
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "PerBlockParam",
    "PerStageParam",
    "PlacementParam",
    "SearchSpaceConfig",
]


# ----------------------------------------------------------------------------- search space
class _Param(_Base):
    target: str | None = (
        None  # "model.<kw>", "model.adaptor.<field>", "train.<key>"; default model.<name>
    )
    when: dict[str, Scalar | list[Scalar]] | None = None  # present only when others take values


class FloatParam(_Param):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        if self.log and self.low <= 0:
            raise ValueError(
                f"a log-scale range needs low > 0, but got low={self.low}; "
                "set low to a positive value or log: false"
            )
        if self.high < self.low:
            raise ValueError(f"needs low <= high, but got low={self.low}, high={self.high}")
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined; remove one")
        return self


class IntParam(_Param):
    type: Literal["int"]
    low: int
    high: int
    step: int = 1
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        if self.log and self.low <= 0:
            raise ValueError(
                f"a log-scale range needs low > 0, but got low={self.low}; "
                "set low >= 1 or log: false"
            )
        if self.high < self.low:
            raise ValueError(f"needs low <= high, but got low={self.low}, high={self.high}")
        if self.log and self.step != 1:
            raise ValueError("a log-scale int range needs step: 1; remove step or log")
        return self


class CategoricalParam(_Param):
    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)


class PerStageParam(_Param):
    """One value per stage (blocks per stage, tableau per stage, RKCNN stages per period)."""

    type: Literal["per_stage"]
    stages: int | None = Field(None, ge=1)  # default: the model's stage count
    choices: list[Scalar] | None = None
    low: int | None = None
    high: int | None = None
    step: int = 1

    @model_validator(mode="after")
    def _check(self) -> PerStageParam:
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError("give either choices: [...] or low and high (integers), not both")
        if self.low is not None and self.high is not None and self.high < self.low:
            raise ValueError(f"needs low <= high, but got low={self.low}, high={self.high}")
        return self


class PlacementParam(_Param):
    """LTH4SA: which blocks carry the adaptor, as a per-stage mask string like "110|0011"."""

    type: Literal["placement"]
    mode: Literal["bits", "k_of_l", "density"] = "bits"
    k: tuple[int, int] | None = None  # k_of_l: range of k (inclusive)
    density: tuple[float, float] = (0.0, 1.0)

    @model_validator(mode="after")
    def _check(self) -> PlacementParam:
        if self.mode == "k_of_l" and (self.k is None or not 0 <= self.k[0] <= self.k[1]):
            raise ValueError("mode k_of_l needs k: [kmin, kmax] with 0 <= kmin <= kmax")
        if not 0.0 <= self.density[0] <= self.density[1] <= 1.0:
            raise ValueError(
                f"density must be [lo, hi] within [0, 1], but got {list(self.density)}"
            )
        return self


class PerBlockParam(_Param):
    """One adaptor preset per block out of ``choices`` ("none" = no adaptor in that block); the
    model gets ``adaptor`` as a list per stage of names. Targets ``model.adaptor`` only."""

    type: Literal["per_block"]
    choices: list[str] = Field(min_length=1)


Param = Annotated[
    FloatParam | IntParam | CategoricalParam | PerStageParam | PlacementParam | PerBlockParam,
    Field(discriminator="type"),
]


class SearchSpaceConfig(_Base):
    description: str = ""
    params: dict[str, Param] = Field(min_length=1)

    @field_validator("params")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(
                    f"parameter name {name!r} must be an identifier (letters, digits, _)"
                )
        return v


# ----------------------------------------------------------------------------- study
