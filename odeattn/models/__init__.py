"""Models: ResNet families, LM-ResNet, RKCNN and ODE-Net baselines as compiled method steps.

``create_model(name, **kw)`` builds any entry of ``MODELS`` (``list_models()`` lists them);
keyword arguments are bound against the factory's signature (an unknown keyword is an error with
a "did you mean"). Every model has ``architecture()`` -> plain dict, and
``create_model(**model.architecture())`` rebuilds the same network.
"""

from __future__ import annotations

from odeattn.models import lm_resnet as _lm_resnet  # noqa: F401
from odeattn.models import odenet as _odenet  # noqa: F401  (importing registers the families)
from odeattn.models import resnet as _resnet  # noqa: F401
from odeattn.models import rkcnn as _rkcnn  # noqa: F401
from odeattn.models._checkpoint import (
    load_checkpoint,
    plain,
    remove_stale_tmp,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from odeattn.models._common import format_placement, parse_placement, split_per_stage
from odeattn.models._registry import MODELS, ModelArgumentError, create_model, list_models
from odeattn.models.lm_resnet import MULTISTEP_METHODS

__all__ = [
    "MODELS",
    "MULTISTEP_METHODS",
    "ModelArgumentError",
    "create_model",
    "format_placement",
    "list_models",
    "load_checkpoint",
    "parse_placement",
    "plain",
    "remove_stale_tmp",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "split_per_stage",
]
