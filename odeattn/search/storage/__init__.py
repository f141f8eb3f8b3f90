"""Where a study lives: storage URLs, opening a storage, the budget, heartbeats, recovery, faults.

``_storage_url`` checks and redacts URLs; ``_open`` says where a study lives, checks it can be
written and opens it (``_guarded``: an RDB storage that waits out a server's outage; ``_journal``:
a journal whose torn last record is cut off); ``_storage`` counts the budget, records heartbeats
and recovers trials of dead processes, each exactly once; ``_lock`` is a study's lock (one
process at a time: the claim of a configuration's training); ``_faults`` says a storage's fault in
one line; ``_attrs`` writes several user attributes (or params) of a trial in one storage write;
``_study_check`` refuses a study name reused by another search; ``_optuna_private`` is
the one adapter for Optuna internals.
"""

from odeattn.search.storage._attrs import (
    defer_user_attrs,
    flush_user_attrs,
    params_in_one_write,
    set_constraint,
    set_user_attrs,
    tell,
)
from odeattn.search.storage._faults import StorageFault, StorageUnavailable, interrupted
from odeattn.search.storage._lock import study_lock
from odeattn.search.storage._open import check_writable, default_storage, make_storage
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
    disk_fault,
    give_back,
    heartbeat,
    mark_process,
    recover_stale,
)
from odeattn.search.storage._storage_url import StorageURLError, check_storage_url, redact
from odeattn.search.storage._study_check import check_study, fingerprint, stamp_study

__all__ = [
    "StorageFault",
    "StorageURLError",
    "StorageUnavailable",
    "budget_used",
    "changed_trials",
    "check_storage_url",
    "check_study",
    "check_writable",
    "counts",
    "create_or_load",
    "created_by_this_launch",
    "default_storage",
    "defer_user_attrs",
    "disk_fault",
    "fingerprint",
    "flush_user_attrs",
    "give_back",
    "heartbeat",
    "heartbeat_enabled",
    "interrupted",
    "is_optuna_trial",
    "make_storage",
    "mark_process",
    "params_in_one_write",
    "recover_stale",
    "redact",
    "set_constraint",
    "set_user_attrs",
    "stale_trial_ids",
    "stamp_study",
    "storage_of",
    "study_id_of",
    "study_lock",
    "tell",
    "trial_id_of",
]
