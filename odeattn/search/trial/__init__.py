"""One trial: build the sampled network, train it, measure every objective, record it.

``run_trial(study, params, report, *, trial=None)`` (``_objective``) is the seam both backends
share; ``_metrics`` measures stiffness, cost and attention blocks; ``_dashboard`` writes a trial's
user attributes and artifacts for optuna-dashboard; ``_replicates`` trains a configuration with
every seed of the plan (and a noise-ceiling retrain with fresh ones); ``_deadline`` is
``budget.timeout``'s one rule (stop at T); ``_supernet`` scores an architecture with the study's
trained supernet instead of training it (``strategy: supernet``), and ``trial_function`` picks
the one the backends call; ``_screen`` is the proxy screen both backends hand it (``screen_for``).
"""

from odeattn.search.trial._dashboard import (
    arch_document,
    artifact_dir,
    dashboard_command,
    json_safe,
    record_trial,
)
from odeattn.search.trial._deadline import Deadline, DeadlinePassed, stop_at
from odeattn.search.trial._metrics import attention_blocks, cost, stiffness
from odeattn.search.trial._objective import ConfigurationRefused, Report, Screen, build, run_trial
from odeattn.search.trial._replicates import Retrain, aggregate, retrain, train_replicates
from odeattn.search.trial._screen import screen_for
from odeattn.search.trial._supernet import loaded_supernet, score_trial, trial_function

__all__ = [
    "ConfigurationRefused",
    "Deadline",
    "DeadlinePassed",
    "Report",
    "Retrain",
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
    "retrain",
    "run_trial",
    "score_trial",
    "screen_for",
    "stiffness",
    "stop_at",
    "train_replicates",
    "trial_function",
]
