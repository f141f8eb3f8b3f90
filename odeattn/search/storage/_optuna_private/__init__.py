"""The one place odeattn reaches into Optuna's internals, where Optuna has no public API.

Optuna 4/5 expose no public accessor for a study's storage or id, for a live trial's storage id,
for "is heartbeat on for this storage" or for "which RUNNING trials have a stale heartbeat" (only
``optuna.storages.fail_stale_trials``, which fails them without telling which). odeattn needs
these to record heartbeats from its own thread, to label and re-queue stale trials, to tell an
``optuna.Trial`` from a duck-typed one, to read only the trials that changed (Optuna's
``get_trials`` builds and sorts the list of every trial at each call: O(N) per read, issue 20),
to lock a study for one process at a time (the file of a journal; on a database server the lock
Optuna takes on the study's row to number a new trial), and to retry every database call of an
``RDBStorage`` through a server outage, which means knowing the backend methods Optuna's
``_CachedStorage`` and ``fail_stale_trials`` call, five of them private (:data:`RDB_CALLS`):
``_reads``. And to write a trial with fewer round trips (issue 20; ``_writes``): several user
attributes or params in one storage write (Optuna has no batch setter; a trial writes ~20
attributes and ~10 params), a tell without reading the trial back (``Study.tell`` re-reads it
to return a copy odeattn never uses) and a constraint without reading the whole trial first
(``Trial.set_constraint``). Every such access goes through this package, and
``tests/test_optuna_private.py`` checks each against the installed Optuna, so an Optuna release
that moves one fails that test loudly instead of breaking a search at run time.
"""

from odeattn.search.storage._optuna_private._reads import (
    RDB_CALLS,
    backend_of,
    changed_trials,
    heartbeat_enabled,
    is_optuna_trial,
    journal_file_of,
    lock_study_row,
    stale_trial_ids,
    storage_of,
    study_id_of,
    trial_id_of,
)
from odeattn.search.storage._optuna_private._writes import (
    cache_user_attrs,
    cached_set_trial_params,
    journal_set_trial_params,
    journal_set_user_attrs,
    kept_params,
    rdb_set_trial_params,
    rdb_set_user_attrs,
    set_constraint,
    tell,
)

__all__ = [
    "RDB_CALLS",
    "backend_of",
    "cache_user_attrs",
    "cached_set_trial_params",
    "changed_trials",
    "heartbeat_enabled",
    "is_optuna_trial",
    "journal_file_of",
    "journal_set_trial_params",
    "journal_set_user_attrs",
    "kept_params",
    "lock_study_row",
    "rdb_set_trial_params",
    "rdb_set_user_attrs",
    "set_constraint",
    "stale_trial_ids",
    "storage_of",
    "study_id_of",
    "tell",
    "trial_id_of",
]
