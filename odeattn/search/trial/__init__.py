"""One trial: build the sampled network, train it, measure every objective, record it.

``run_trial(study, params, report, *, trial=None)`` (``_objective``) is the seam both backends
share; ``_metrics`` measures stiffness, cost and attention blocks; ``_dashboard`` writes a trial's
user attributes and artifacts for optuna-dashboard; ``_supernet`` scores an architecture with the
study's trained supernet instead of training it (``strategy: supernet``), and ``trial_function``
picks the one the backends call.
"""

from odeattn.search.trial._dashboard import (
    arch_document,
    artifact_dir,
    dashboard_command,
    json_safe,
    record_trial,
)
from odeattn.search.trial._metrics import attention_blocks, cost, stiffness
from odeattn.search.trial._objective import Report, Screen, build, run_trial
from odeattn.search.trial._replicates import aggregate, train_replicates
from odeattn.search.trial._supernet import loaded_supernet, score_trial, trial_function

__all__ = [
    "Report",
    "Screen",
    "aggregate",
    "arch_document",
    "artifact_dir",
    "attention_blocks",
    "build",
    "cost",
    "dashboard_command",
    "json_safe",
    "loaded_supernet",
    "record_trial",
    "run_trial",
    "score_trial",
    "stiffness",
    "train_replicates",
    "trial_function",
]
