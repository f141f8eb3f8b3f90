"""Study and search-space schemas: what `python -m odeattn.search STUDY.yaml` reads.

A *study* file names a search-space file, the data, a model family with its fixed arguments, the
training recipe, the objectives, the budget, the sampler and the backend. A *search-space* file
lists what may vary (see ``odeattn/search/_space.py`` for how each parameter is sampled).

Every model is pydantic v2 with ``extra="forbid"`` and ``frozen=True``. Files are read with
``yaml.safe_load``. Every problem becomes a :class:`ConfigError` whose single-line message names
the FILE, the key path (``objectives[1].direction``) and the fix; the command line prints exactly
that line and exits with status 2, before any storage is touched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from odeattn._errors import did_you_mean

__all__ = [
    "METRICS",
    "STIFFNESS_METRICS",
    "ConfigError",
    "Objective",
    "SearchSpaceConfig",
    "StudyConfig",
    "closest",
    "load_search_space",
    "load_study",
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
#: Metrics measured on the feature trajectory; they take ``at: init | end | <epochs>``.
STIFFNESS_METRICS = ("tns", "nsi_mean", "nsi_max", "p_hat")
Direction = Literal["maximize", "minimize"]
Scalar = bool | int | float | str | None


class ConfigError(ValueError):
    """A bad study or search-space file: ``FILE: key.path: what is wrong; how to fix it``."""

    def __init__(self, file: str | Path, key: str, message: str) -> None:
        self.file, self.key, self.message = str(file), key, message
        super().__init__(f"{self.file}: {key or '<top level>'}: {message}")


def closest(name: object, valid: list[str] | tuple[str, ...]) -> str:
    """'unknown X; did you mean Y? valid: ...' fragment for an unknown name."""
    hint = did_you_mean(name, valid).lstrip("; ")
    return f"{hint + ' ' if hint else ''}valid: {', '.join(map(str, valid))}"


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


Param = Annotated[
    FloatParam | IntParam | CategoricalParam | PerStageParam | PlacementParam,
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
class DataCfg(_Base):
    name: str = "digits"
    root: str | None = None
    val_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    kwargs: dict[str, Any] = {}


class ModelCfg(_Base):
    name: str
    kwargs: dict[str, Any] = {}  # fixed create_model arguments; num_classes defaults from the data


class TrainCfg(_Base):
    recipe: str = "digits"
    epochs: int | None = Field(None, ge=1)
    overrides: dict[str, Any] = {}  # fields of the recipe's training config
    device: str = "auto"


class Objective(_Base):
    metric: str
    direction: Direction
    at: Literal["init", "end"] | Annotated[int, Field(ge=1)] = "end"

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; {closest(v, METRICS)}")
        return v

    @property
    def name(self) -> str:
        """Key in the trial's metrics dict: ``tns@init``, ``tns@2``, ``tns`` (end), ``val_accuracy``."""
        if self.metric in STIFFNESS_METRICS and self.at != "end":
            return f"{self.metric}@{self.at}"
        return self.metric


class MeasureCfg(_Base):
    samples: int = Field(256, ge=2)  # validation samples for NSI / TNS
    nsi: Literal["step", "fd"] = "step"
    p_hat_m: tuple[float, float] = (0.0, 0.0)
    latency_batch: int = Field(1, ge=1)


class PruningCfg(_Base):
    """Our own rule (works for multi-objective studies): stop a trial whose ``metric`` at epoch e is
    worse than the ``percentile`` of the other trials' values at epoch e (50 = median rule)."""

    metric: str = "val_accuracy"
    direction: Direction | None = None  # default: the objective's direction, else from the metric
    rule: Literal["median", "percentile"] = "median"
    percentile: float = Field(50.0, gt=0, lt=100)
    warmup_epochs: int = Field(1, ge=0)
    min_trials: int = Field(3, ge=1)


class ScreenCfg(_Base):
    """TNS proxy screen: score at init (or after ``at`` epochs), train only the best fraction."""

    metric: str = "tns"
    at: Literal["init"] | Annotated[int, Field(ge=1)] = "init"
    direction: Direction = "maximize"
    keep_fraction: float = Field(0.5, gt=0, le=1)
    warmup_trials: int = Field(4, ge=0)

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        ok = (*STIFFNESS_METRICS, "params", "flops")
        if v not in ok:
            raise ValueError(f"unknown screen metric {v!r}; {closest(v, ok)}")
        return v


class SamplerCfg(_Base):
    name: Literal["tpe", "nsga2", "nsga3", "gp", "random", "grid"] = "tpe"
    seed: int | None = 0
    kwargs: dict[str, Any] = {}


class BudgetCfg(_Base):
    n_trials: int = Field(ge=1)  # total over all invocations
    timeout: float | None = Field(None, gt=0)  # seconds, per invocation


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


class StudyConfig(_Base):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    search_space: str
    data: DataCfg = DataCfg()
    model: ModelCfg
    train: TrainCfg = TrainCfg()
    objectives: list[Objective] = Field(min_length=1)
    measure: MeasureCfg = MeasureCfg()
    pruning: PruningCfg | None = None
    screen: ScreenCfg | None = None
    sampler: SamplerCfg = SamplerCfg()
    budget: BudgetCfg
    backend: Literal["optuna", "ray"] = "optuna"
    workers: int = Field(1, ge=1)
    storage: str | None = None  # default under runs_dir/<name>/
    runs_dir: str = "runs"
    ray: RayCfg = RayCfg()
    # set by load_study: absolute path of the file (for messages and relative paths)
    file: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _cross(self) -> StudyConfig:
        names = [o.name for o in self.objectives]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"objectives: {dup[0]!r} appears twice; keep one")
        if self.backend == "ray" and self.pruning is not None:
            raise _KeyedError(
                "pruning",
                "the ray backend does not run Optuna-side pruning; "
                "remove `pruning` and set `ray.scheduler: asha` instead",
            )
        if self.backend == "ray" and self.workers != 1:
            raise _KeyedError(
                "workers",
                "`workers` is for the optuna backend; with ray use `ray.max_concurrent_trials`",
            )
        if self.pruning is not None and self.pruning.direction is None:
            d = next(
                (o.direction for o in self.objectives if o.metric == self.pruning.metric), None
            )
            if d is None and self.pruning.metric not in ("val_accuracy", "val_loss", "train_loss"):
                raise _KeyedError(
                    "pruning.direction",
                    f"metric {self.pruning.metric!r} is not an "
                    "objective; give direction: maximize or minimize",
                )
        if self.sampler.name == "nsga3" and len(self.objectives) < 2:
            raise _KeyedError("sampler.name", "nsga3 needs two or more objectives; use tpe")
        return self

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def pruning_direction(self) -> str:
        p = self.pruning
        assert p is not None
        if p.direction:
            return p.direction
        d = next((o.direction for o in self.objectives if o.metric == p.metric), None)
        return d or ("maximize" if p.metric == "val_accuracy" else "minimize")

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    @property
    def space_path(self) -> Path:
        p = Path(self.search_space)
        return p if p.is_absolute() else Path(self.file).parent / p


class _KeyedError(ValueError):
    """Raised inside validators to point at a key other than the validator's own location."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


# ----------------------------------------------------------------------------- loading
def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(path, "", f"file not found (cwd {Path.cwd()}); check the path")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(path, "", f"not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "", f"must be a mapping of keys, but got {type(data).__name__}")
    return data


def _loc(loc: tuple[Any, ...], tags: set[str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in tags or str(part).startswith(("function-", "literal[", "int", "float")):
            continue  # union / discriminator branch names are not keys of the file
        else:
            out += f".{part}" if out else str(part)
    return out


_TAGS = {
    "float",
    "int",
    "categorical",
    "per_stage",
    "placement",
    "str",
    "bool",
    "none",
    "list[...]",
    "dict[...]",
    "tuple[...]",
}


def _fix(err: dict[str, Any]) -> str:
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    inp = err.get("input")
    if kind == "extra_forbidden":
        return "unknown key; remove it or check its spelling"
    if kind == "missing":
        return "required key is missing; add it"
    if kind == "union_tag_invalid":
        return f"{msg}; set type to one of float, int, categorical, per_stage, placement"
    if kind.endswith(("_type", "_parsing")) or kind in ("literal_error",):
        return f"{msg}, but got {inp!r}"
    return msg


def _validate(cls: type[BaseModel], data: dict[str, Any], source: Path, **extra: Any) -> Any:
    try:
        return cls.model_validate({**data, **extra})
    except ValidationError as e:
        errs = e.errors(include_url=False)
        err = errs[0]
        ctx_err = (err.get("ctx") or {}).get("error")
        key = _loc(tuple(err["loc"]), _TAGS)
        if isinstance(ctx_err, _KeyedError):
            key = ctx_err.key
        more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
        raise ConfigError(source, key, _fix(err) + more) from None


def load_study(path: str | Path, **overrides: Any) -> StudyConfig:
    """Read and validate a study file; ``overrides`` replace top-level keys (the CLI's flags)."""
    path = Path(path)
    data = _read_yaml(path)
    if "file" in data:
        raise ConfigError(path, "file", "unknown key; remove it or check its spelling")
    for k, v in overrides.items():
        if k == "n_trials":
            data["budget"] = {**(data.get("budget") or {}), "n_trials": v}
        else:
            data[k] = v
    return _validate(StudyConfig, data, path, file=str(path.resolve()))


def load_search_space(study: StudyConfig) -> SearchSpaceConfig:
    """Read the study's search-space file (path relative to the study file)."""
    path = study.space_path
    if not path.is_file():
        raise ConfigError(
            study.file,
            "search_space",
            f"file {path} not found; give a path relative to the study file, "
            "e.g. ../search_spaces/<name>.yaml",
        )
    return _validate(SearchSpaceConfig, _read_yaml(path), path)
