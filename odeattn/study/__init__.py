"""The study file and what it resolves to: the schema, the search space, and one plan per trial.

A *study* (``studies/*.yaml``) names a search-space file, the data, a model family with its fixed
arguments, the training recipe, the objectives, the budget, the sampler and the backend
(``config/``: pydantic schemas, read with ``yaml.safe_load``, every problem one
:class:`ConfigError` line). ``resolve_space`` checks it against the registries and returns the
:class:`Space`; ``sample``/``decode`` turn an Optuna trial into model and training arguments
(``_space``); ``_build`` turns those into a model's kwargs, the data and a training config; ``encode`` inverts
``decode`` for architecture parameters and ``draw`` samples a space from a generator (``_encode``);
``samplers/`` holds odeattn's own samplers (EAN's REINFORCE controller).

This package sits below ``supernet`` and ``search`` (both read study files) and above ``train``.
"""

from odeattn.study._build import (
    SHAPES,
    config_fields,
    data_for,
    input_batch,
    model_kwargs,
    train_config,
)
from odeattn.study._encode import draw, encode
from odeattn.study._plan import STRIDE, TrialPlan, plan_for, replicate_seeds
from odeattn.study._resolve import check_data, resolve_space, sampler_class
from odeattn.study._space import (
    Decoded,
    Space,
    decode,
    density_mask,
    grid_space,
    sample,
    target_of,
)
from odeattn.study.config import (
    METRICS,
    STIFFNESS_METRICS,
    STRATEGIES,
    ConfigError,
    Objective,
    SearchFailed,
    SearchSpaceConfig,
    SetupError,
    StudyConfig,
    SupernetCfg,
    closest,
    load_search_space,
    load_study,
    supernet_settings,
)

__all__ = [
    "METRICS",
    "SHAPES",
    "STIFFNESS_METRICS",
    "STRATEGIES",
    "STRIDE",
    "ConfigError",
    "Decoded",
    "Objective",
    "SearchFailed",
    "SearchSpaceConfig",
    "SetupError",
    "Space",
    "StudyConfig",
    "SupernetCfg",
    "TrialPlan",
    "check_data",
    "closest",
    "config_fields",
    "data_for",
    "decode",
    "density_mask",
    "draw",
    "encode",
    "grid_space",
    "input_batch",
    "load_search_space",
    "load_study",
    "model_kwargs",
    "plan_for",
    "replicate_seeds",
    "resolve_space",
    "sample",
    "sampler_class",
    "supernet_settings",
    "target_of",
    "train_config",
]
