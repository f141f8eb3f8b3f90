"""The embedded backend: an ask/tell loop in this process or in N local worker processes.

``_worker`` (samplers, opening the study, the worker loop), ``_prune`` (odeattn's own pruning
rules for multi-objective studies), ``_duplicate`` (configurations proposed again are served from
storage; one that another worker is training is waited for: each is trained once), ``_ledger``
(the loop's bookkeeping over every trial, kept incrementally: flat cost per trial).
"""

from odeattn.search.backends.optuna._duplicate import (
    claim,
    find_duplicate,
    serve_duplicate,
    wait_for,
)
from odeattn.search.backends.optuna._prune import (
    decide,
    dominated_rule,
    may_decide,
    percentile_rule,
)
from odeattn.search.backends.optuna._worker import (
    make_sampler,
    open_study,
    worker_loop,
    worker_main,
)

__all__ = [
    "claim",
    "decide",
    "dominated_rule",
    "find_duplicate",
    "make_sampler",
    "may_decide",
    "open_study",
    "percentile_rule",
    "serve_duplicate",
    "wait_for",
    "worker_loop",
    "worker_main",
]
