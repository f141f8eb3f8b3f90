"""Study and search-space schemas: what `python -m odeattn.search STUDY.yaml` reads.

A *study* file names a search-space file, the data, a model family with its fixed arguments, the
training recipe, the objectives, the budget, the sampler and the backend. A *search-space* file
lists what may vary (see ``odeattn/study/_space.py`` for how each parameter is sampled).

Every model is pydantic v2 with ``extra="forbid"`` and ``frozen=True``. Files are read with
``yaml.safe_load``. Every problem becomes a :class:`ConfigError` whose single-line message names
the FILE, the key path (``objectives[1].direction``) and the fix; the command line prints exactly
that line and exits with status 2, before any storage is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from odeattn.study.config._base import (
    METRICS,
    PROXY_NAMES,
    STIFFNESS_METRICS,
    Direction,
    _Base,
    _KeyedError,
    closest,
)
from odeattn.study.config._constraints import ConstraintCfg
from odeattn.study.config._ray import RayCfg
from odeattn.study.config._sampler import SamplerCfg
from odeattn.study.config._supernet import Strategy, SupernetCfg, check_strategy  # issue 19

__all__ = ["Objective", "StudyConfig"]


class DataCfg(_Base):
    name: str = "digits"
    root: str | None = None
    val_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    kwargs: dict[str, Any] = Field(default_factory=dict)


class ModelCfg(_Base):
    name: str
    kwargs: dict[str, Any] = Field(
        default_factory=dict
    )  # fixed create_model arguments; num_classes defaults from the data


class TrainCfg(_Base):
    recipe: str = "digits"
    epochs: int | None = Field(None, ge=1)
    overrides: dict[str, Any] = Field(
        default_factory=dict
    )  # fields of the recipe's training config
    device: str = "auto"

    @field_validator("overrides")
    @classmethod
    def _one_source_of_epochs(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "epochs" in v:  # one rule for the epochs (issue 18): train.epochs or --epochs
            raise ValueError(
                f"`overrides.epochs` is not allowed, but got epochs={v['epochs']!r}; "
                "set `train.epochs` (or pass --epochs) instead"
            )
        return v


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
    """Stiffness is measured on a fixed evaluation set: the first ``samples`` validation images,
    cut into batches of ``batch``; TNS is the mean over batches and ``tns_se`` its standard error
    (std over batches / sqrt(batches)), so every stored TNS carries its noise."""

    samples: int = Field(512, ge=2)  # evaluation-set size for NSI / TNS (capped by the val split)
    batch: int = Field(64, ge=2)  # batch of the evaluation set; SE is taken across batches
    nsi: Literal["step", "fd"] = "step"
    p_hat_m: tuple[float, float] = (0.0, 0.0)
    latency_batch: int = Field(1, ge=1)


class PruningCfg(_Base):
    """Our own rules (``odeattn.search.backends.optuna._prune``; they work in multi-objective studies), decided only
    before the last epoch against every trial that reached epoch e: ``median``/``percentile`` stop
    a trial whose ``metric`` is worse than the ``percentile`` of the others at epoch e;
    ``dominated`` stops a trial whose objective vector at epoch e is dominated by ≥ ``k`` others."""

    metric: str = "val_accuracy"
    direction: Direction | None = None  # default: the objective's direction, else from the metric
    rule: Literal["median", "percentile", "dominated"] = "median"
    k: int = Field(1, ge=1)  # dominated rule: dominators needed to prune
    percentile: float = Field(50.0, gt=0, lt=100)
    warmup_epochs: int = Field(1, ge=0)
    min_trials: int = Field(3, ge=1)


class ScreenCfg(_Base):
    """Proxy screen: score at init (or after ``at`` epochs), train only the best fraction.

    ``metric``: a stiffness metric (tns, nsi_mean, …), ``flops``, or any zero-cost proxy of
    :data:`odeattn.proxies.PROXIES` (naswot, synflow, grad_norm, snip, jacob_cov, params; at init).
    """

    metric: str = "tns"
    at: Literal["init"] | Annotated[int, Field(ge=1)] = "init"
    direction: Direction = "maximize"
    keep_fraction: float = Field(0.5, gt=0, le=1)
    warmup_trials: int = Field(4, ge=0)

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        ok = (*STIFFNESS_METRICS, "flops", *PROXY_NAMES)  # the zero-cost scores (params incl.)
        if v not in ok:
            raise ValueError(f"unknown screen metric {v!r}; {closest(v, ok)}")
        return v

    @model_validator(mode="after")
    def _zero_cost_at_init(self) -> ScreenCfg:
        if self.metric in PROXY_NAMES and self.metric != "params" and self.at != "init":
            raise _KeyedError(
                "screen.at",
                f"the zero-cost proxy {self.metric!r} scores the untrained network: "
                f"set at: init (or screen by tns, nsi_mean, … after {self.at} epochs)",
            )
        return self


class NoiseCfg(_Base):
    """The noise ceiling: after the budget, ``trials`` finished trials (spread over the ranking of
    the first objective) are trained again with fresh seeds (plan seeds + ``seed_offset``) through
    the study's backend (``--workers N`` processes, Ray tasks), before ``budget.timeout``; the
    seed-to-seed Kendall τ of the first objective with a bootstrap 95 % CI (``bootstrap``
    resamples) says how well a ranking repeats. ``0``: off; ``"auto"`` (default): 6 when a retrain
    is cheap (digits or synthetic data, ≤ 100 epochs × replicates), else 0 (set it explicitly)."""

    trials: Literal["auto"] | int = "auto"
    bootstrap: int = Field(2000, ge=100)
    seed_offset: int = Field(100_003, ge=1)  # fresh seed = trial seed + seed_offset

    @field_validator("trials", mode="before")
    @classmethod
    def _trials(cls, v: Any) -> Any:
        if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            return v
        raise ValueError(f"must be 'auto' or a whole number >= 0 (0: off), but got trials={v!r}")


class BudgetCfg(_Base):
    """``n_trials``: counted trials over all invocations. ``timeout`` (``--timeout``): *stop at T*
    = this invocation's start + ``timeout`` s, on every backend: after T no trial and no noise
    retrain starts (a retrain only if its trial's training time fits before T); a trial training
    at T stops (next epoch boundary; Ray: at T) and is re-queued, holding no budget slot; finished
    work is kept; summary and exports follow (exit 0)."""

    n_trials: int = Field(ge=1)  # total over all invocations
    timeout: float | None = Field(None, gt=0)  # seconds, per invocation: stop at T


class StudyConfig(_Base):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    search_space: str
    data: DataCfg = DataCfg()
    model: ModelCfg
    train: TrainCfg = TrainCfg()
    objectives: list[Objective] = Field(min_length=1)
    measure: MeasureCfg = MeasureCfg()
    replicates: int = Field(1, ge=1)  # seeds per configuration; objective = mean, SE stored
    noise: NoiseCfg = NoiseCfg()
    pruning: PruningCfg | None = None
    screen: ScreenCfg | None = None
    constraints: list[ConstraintCfg] = Field(default_factory=list)
    sampler: SamplerCfg = SamplerCfg()
    budget: BudgetCfg
    backend: Literal["optuna", "ray"] = "optuna"
    workers: int = Field(1, ge=1)
    storage: str | None = None  # default under runs_dir/<name>/
    runs_dir: str = "runs"
    ray: RayCfg = RayCfg()
    strategy: Strategy = "scratch"  # issue 19: one-shot search (study/config/_supernet.py)
    supernet: SupernetCfg | None = None  # issue 19
    # set by load_study: absolute path of the file (for messages and relative paths)
    file: str = Field("", exclude=True)

    @field_validator("name")
    @classmethod
    def _not_a_path(cls, v: str) -> str:
        if v.startswith("."):  # '.' and '..' would write into --runs-dir or its parent
            raise ValueError(
                f"must not start with '.', but got name={v!r}; use letters, digits, _ . -"
            )
        return v

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
        if self.pruning is not None and self.pruning.rule == "dominated" and len(names) < 2:
            raise _KeyedError(
                "pruning.rule", "`dominated` needs two or more objectives; use median"
            )
        if self.sampler.name == "nsga3" and len(self.objectives) < 2:
            raise _KeyedError("sampler.name", "nsga3 needs two or more objectives; use tpe")
        check_strategy(self)  # issue 19
        return self

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def objectives_need_stiffness(self) -> bool:
        return any(o.metric in STIFFNESS_METRICS for o in self.objectives)

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
