"""Where a study lives: storage URLs, the Optuna storage, the budget, heartbeats, name reuse.

``_storage_url`` checks and redacts URLs; ``_storage`` opens storages, counts the budget, records
heartbeats and recovers trials of dead processes; ``_study_check`` refuses a study name reused by
another search; ``_optuna_private`` is the one adapter for Optuna internals.
"""

from odeattn.search.storage._optuna_private import (
    changed_trials,
    heartbeat_enabled,
    is_optuna_trial,
    stale_trial_ids,
    storage_of,
    study_id_of,
    trial_id_of,
)
from odeattn.search.storage._storage import (
    budget_used,
    counts,
    create_or_load,
    created_by_this_launch,
    default_storage,
    heartbeat,
    make_storage,
    mark_process,
    recover_stale,
)
from odeattn.search.storage._storage_url import StorageURLError, check_storage_url, redact
from odeattn.search.storage._study_check import check_study, fingerprint, stamp_study

__all__ = [
    "StorageURLError",
    "budget_used",
    "changed_trials",
    "check_storage_url",
    "check_study",
    "counts",
    "create_or_load",
    "created_by_this_launch",
    "default_storage",
    "fingerprint",
    "heartbeat",
    "heartbeat_enabled",
    "is_optuna_trial",
    "make_storage",
    "mark_process",
    "recover_stale",
    "redact",
    "stale_trial_ids",
    "stamp_study",
    "storage_of",
    "study_id_of",
    "trial_id_of",
]
