"""The study file and what it resolves to: the schema, the search space, and one plan per trial.

A *study* (``studies/*.yaml``) names a search-space file, the data, a model family with its fixed
arguments, the training recipe, the objectives, the budget, the sampler and the backend
(``config/``: pydantic schemas, read with ``yaml.safe_load``, every problem one
:class:`ConfigError` line). ``resolve_space`` checks it against the registries and returns the
:class:`Space`; ``sample``/``decode`` turn an Optuna trial into model and training arguments
(``_space``); ``check_depth`` refuses a search by TNS or p̂ on stages too shallow to measure it
(``_depth``); ``_build`` turns those into a model's kwargs, the data and a training config; ``encode`` inverts
``decode`` for architecture parameters and ``draw`` samples a space from a generator (``_encode``);
``samplers/`` holds odeattn's own samplers (EAN's REINFORCE controller).

The face is lazy (PEP 562): ``odeattn.study.config`` — the schema — imports neither torch nor
the registries, so ``python -m odeattn.search --help`` and a schema error answer at once.

This package sits below ``supernet`` and ``search`` (both read study files) and above ``train``.
"""

from __future__ import annotations

from odeattn._errors import lazy_attribute

#: public name -> the module that defines it (imported on first use)
_LAZY = {
    "ConfigError": "odeattn.study.config",
    "DEPTH_METRICS": "odeattn.study.config",
    "Decoded": "odeattn.study._space",
    "METRICS": "odeattn.study.config",
    "PROXY_NAMES": "odeattn.study.config",
    "Objective": "odeattn.study.config",
    "SHAPES": "odeattn.study._build",
    "STIFFNESS_METRICS": "odeattn.study.config",
    "STRIDE": "odeattn.study._plan",
    "SearchFailed": "odeattn.study.config",
    "SearchSpaceConfig": "odeattn.study.config",
    "SetupError": "odeattn.study.config",
    "Space": "odeattn.study._space",
    "StudyConfig": "odeattn.study.config",
    "TrialPlan": "odeattn.study._plan",
    "check_data": "odeattn.study._resolve",
    "check_depth": "odeattn.study._depth",
    "closest": "odeattn.study.config",
    "config_fields": "odeattn.study._build",
    "data_for": "odeattn.study._build",
    "decode": "odeattn.study._space",
    "grid_space": "odeattn.study._space",
    "input_batch": "odeattn.study._build",
    "load_search_space": "odeattn.study.config",
    "load_study": "odeattn.study.config",
    "model_kwargs": "odeattn.study._build",
    "plan_for": "odeattn.study._plan",
    "replicate_seeds": "odeattn.study._plan",
    "resolve_space": "odeattn.study._resolve",
    "sample": "odeattn.study._space",
    "sampler_class": "odeattn.study._resolve",
    "train_config": "odeattn.study._build",
    "STRATEGIES": "odeattn.study.config",
    "SupernetCfg": "odeattn.study.config",
    "supernet_settings": "odeattn.study.config",
    "draw": "odeattn.study._encode",
    "encode": "odeattn.study._encode",
    "density_mask": "odeattn.study._space",
    "target_of": "odeattn.study._space",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_attribute("odeattn.study", _LAZY, globals())
