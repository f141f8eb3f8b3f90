"""Reading through Optuna's internals: ids, the storage under the cache, heartbeats, the
trials that changed, the study's lock, the database calls to retry (see the package face)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

__all__ = [
    "RDB_CALLS",
    "backend_of",
    "changed_trials",
    "heartbeat_enabled",
    "is_optuna_trial",
    "journal_file_of",
    "lock_study_row",
    "stale_trial_ids",
    "storage_of",
    "study_id_of",
    "trial_id_of",
]


# The RDBStorage methods that open a database session (one transaction each): the public storage
# API and the private methods _CachedStorage and fail_stale_trials call on their backend.
RDB_CALLS = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "_create_new_trial",
    "set_trial_param",
    "_set_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_n_trials",
    "get_best_trial",
    "_get_best_trial_id",
    "get_trial_params",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "record_heartbeat",
    "_get_stale_trial_ids",
)


def backend_of(storage: BaseStorage) -> BaseStorage:
    """The storage under Optuna's in-process cache (``_CachedStorage._backend``), else itself."""
    from optuna.storages._cached_storage import _CachedStorage  # private module: here only

    return storage._backend if isinstance(storage, _CachedStorage) else storage


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes (``Study._storage``)."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    """The storage's id of ``study`` (``Study._study_id``)."""
    return study._study_id


def trial_id_of(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The storage's id of a live or frozen trial (``_trial_id``; not its ``number``)."""
    return trial._trial_id


def is_optuna_trial(trial: Any) -> bool:
    """True for a live ``optuna.Trial`` (it has a storage id), False for a duck-typed stand-in."""
    return isinstance(trial, optuna.Trial)


def heartbeat_enabled(storage: BaseStorage) -> bool:
    """Whether ``storage`` records heartbeats (an RDB storage built with ``heartbeat_interval``)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled  # private module: here only

    return bool(is_heartbeat_enabled(storage))


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """Storage ids of the study's RUNNING trials whose heartbeat is older than the grace period."""
    storage = storage_of(study)
    return list(storage._get_stale_trial_ids(study_id_of(study)))


def changed_trials(
    study: optuna.Study, since: int, numbers: Iterable[int]
) -> tuple[int, dict[int, FrozenTrial]] | None:
    """``(n, {number: trial})``: the study's number of trials and its trials numbered ``since``
    or more or listed in ``numbers``, read incrementally from Optuna's cache of an RDB storage
    (``_CachedStorage``: it re-reads only new and unfinished trials from the database, keyed by
    number); ``None`` for any other storage (then read every trial with ``get_trials``)."""
    from optuna.storages._cached_storage import _CachedStorage  # private module: here only

    storage = storage_of(study)
    if not isinstance(storage, _CachedStorage):
        return None
    sid = study_id_of(study)
    storage._read_trials_from_remote_storage(sid)
    with storage._lock:
        cached = storage._studies[sid].trials  # number -> FrozenTrial, every trial read so far
        n = len(cached)
        return n, {k: cached[k] for k in itertools.chain(range(since, n), numbers) if k in cached}


def journal_file_of(storage: BaseStorage) -> Path | None:
    """The file of a journal storage (``JournalStorage._backend``, a ``JournalFileBackend``, whose
    ``_file_path`` it is); ``None`` for any other storage."""
    if not isinstance(storage, optuna.storages.JournalStorage):
        return None
    file = getattr(storage._backend, "_file_path", None)
    return None if file is None else Path(file)


def lock_study_row(storage: BaseStorage, study_id: int) -> Any:
    """A new session of the RDB ``storage`` (its own connection) holding the row lock Optuna takes
    to number a new trial (``StudyModel.find_or_raise_by_id(..., for_update=True)``: ``SELECT …
    FOR UPDATE`` on the study's row) until the caller closes it (closing rolls back: the lock is
    released, also when the connection is gone). SQLite ignores ``FOR UPDATE``."""
    import sqlalchemy.orm
    from optuna.storages._rdb import models  # private module: here only

    session = sqlalchemy.orm.Session(bind=backend_of(storage).engine)
    try:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
    except BaseException:
        session.close()
        raise
    return session
