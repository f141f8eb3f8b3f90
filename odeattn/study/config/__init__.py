"""Study and search-space files: the schemas ``python -m odeattn.search STUDY.yaml`` reads.

A *study* names a search-space file, the data, a model family with its fixed arguments, the
training recipe, the objectives, the budget, the sampler and the backend; a *search space* lists
what may vary. pydantic v2, ``extra="forbid"``, frozen; files read with ``yaml.safe_load``; every
problem is one :class:`ConfigError` line ``FILE: key.path: what; fix`` (exit 2, nothing written).
"""

from odeattn.study.config._base import (
    DEPTH_METRICS,
    METRICS,
    PROXY_NAMES,
    STIFFNESS_METRICS,
    ConfigError,
    SearchFailed,
    SetupError,
    closest,
)
from odeattn.study.config._load import load_search_space, load_study
from odeattn.study.config._space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    PerBlockParam,
    PerStageParam,
    PlacementParam,
    SearchSpaceConfig,
)
from odeattn.study.config._study import Objective, StudyConfig
from odeattn.study.config._supernet import (
    STRATEGIES,
    SupernetCfg,
    check_strategy,
    supernet_settings,
)

__all__ = [
    "DEPTH_METRICS",
    "METRICS",
    "PROXY_NAMES",
    "STIFFNESS_METRICS",
    "STRATEGIES",
    "CategoricalParam",
    "ConfigError",
    "FloatParam",
    "IntParam",
    "Objective",
    "PerBlockParam",
    "PerStageParam",
    "PlacementParam",
    "SearchFailed",
    "SearchSpaceConfig",
    "SetupError",
    "StudyConfig",
    "SupernetCfg",
    "check_strategy",
    "closest",
    "load_search_space",
    "load_study",
    "supernet_settings",
]
