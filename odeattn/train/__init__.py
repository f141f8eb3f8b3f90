"""Training: the loop with one seam ``report(epoch, metrics) -> should_stop``, recipes, checkpoints.

``python -m odeattn.train`` retrains a named model or an exported architecture.
:func:`threads_from_env` is the one (checked) reader of ``ODEATTN_THREADS``.
"""

from odeattn._env import threads_from_env
from odeattn.train._loop import (
    RECIPES,
    Diverged,
    TrainConfig,
    evaluate,
    fit,
    load_checkpoint,
    lr_factor,
    save_checkpoint,
)

__all__ = [
    "RECIPES",
    "Diverged",
    "TrainConfig",
    "evaluate",
    "fit",
    "load_checkpoint",
    "lr_factor",
    "save_checkpoint",
    "threads_from_env",
]
