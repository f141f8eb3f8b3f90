"""The one place odeattn reaches into Optuna's internals, where Optuna has no public API.

Optuna 4/5 expose no public accessor for a study's storage or id, for a live trial's storage id,
for "is heartbeat on for this storage" or for "which RUNNING trials have a stale heartbeat" (only
``optuna.storages.fail_stale_trials``, which fails them without telling which). odeattn needs
these to record heartbeats from its own thread, to label and re-queue stale trials, to tell an
``optuna.Trial`` from a duck-typed one, to read only the trials that changed (Optuna's
``get_trials`` builds and sorts the list of every trial at each call: O(N) per read, issue 20),
to write several user attributes of a trial in one storage write (Optuna has no batch setter
and a trial writes ~20: :func:`rdb_set_user_attrs`, :func:`journal_set_user_attrs`, issue 20),
to tell a trial without reading it back (``Study.tell`` re-reads the trial to return a copy
odeattn never uses: :func:`tell`; ``Trial.set_constraint`` reads the trial to find a constraint
set before: :func:`set_constraint`), to lock a study for one process at a time (the file of a journal; on a database server the lock
Optuna takes on the study's row to number a new trial), and to retry every database call of an ``RDBStorage`` through a server outage, which means
knowing the backend methods Optuna's ``_CachedStorage`` and ``fail_stale_trials`` call, five of
them private (:data:`RDB_CALLS`). Every such access goes through this module, and
``tests/test_optuna_private.py`` checks each against the installed Optuna, so an Optuna release
that moves one fails that test loudly instead of breaking a search at run time.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

__all__ = [
    "RDB_CALLS",
    "backend_of",
    "cache_user_attrs",
    "changed_trials",
    "heartbeat_enabled",
    "is_optuna_trial",
    "journal_file_of",
    "journal_set_user_attrs",
    "lock_study_row",
    "rdb_set_user_attrs",
    "set_constraint",
    "stale_trial_ids",
    "storage_of",
    "study_id_of",
    "tell",
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


def tell(
    study: optuna.Study,
    trial: optuna.Trial,
    values: float | list[float] | None = None,
    state: optuna.trial.TrialState | None = None,
) -> None:
    """``study.tell(trial, values, state)`` less its last step, a read of the told trial to
    return its deep copy (``Study.tell``: ``copy.deepcopy(_get_frozen_trial(...))``: one full
    read of the trial from an RDB storage, unused here). The tell itself is Optuna's
    (``_tell_with_warning``, what ``Study.tell`` runs): checks, sampler, state and values."""
    from optuna.study._tell import _tell_with_warning  # private module: here only

    _tell_with_warning(study=study, trial=trial, value_or_values=values, state=state)


def set_constraint(trial: optuna.Trial, key: str, value: float) -> None:
    """``trial.set_constraint(key, value)`` without its read of every system attribute of the
    trial from storage (``get_trial_system_attrs``: a full read of the trial on an RDB storage),
    only to skip a constraint set before: that is looked up in the live trial's own copy
    (``Trial._cached_frozen_trial``), which holds the system attributes read when the trial was
    made and every constraint set through it since (odeattn sets each once, only through it).
    The stored attribute is Optuna's (``constraints:<key>``, ``_CONSTRAINTS_KEY``)."""
    from optuna.study._constrained_optimization import _CONSTRAINTS_KEY  # private: here only

    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"constraint {key!r}: {value!r} is not a float") from None
    if math.isnan(value):
        raise ValueError(f"Attempted to set a constraint for {key!r}, but NaN is not allowed.")
    name, attrs = f"{_CONSTRAINTS_KEY}:{key}", trial._cached_frozen_trial.system_attrs
    if name in attrs:
        warnings.warn(f"constraint {key!r} is already set: ignored", stacklevel=3)
        return
    trial.storage.set_trial_system_attr(trial._trial_id, name, value)
    attrs[name] = value


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


def rdb_set_user_attrs(storage: optuna.storages.RDBStorage, trial_id: int, attrs: Mapping) -> None:
    """Write ``attrs`` as user attributes of trial ``trial_id`` in one transaction: Optuna's own
    check (``KeyError``, ``UpdateFinishedTrialError``) once, then one multi-row upsert on SQLite
    and PostgreSQL (Optuna's ``_set_trial_attr_without_commit`` per key on other databases), the
    same rows ``set_trial_user_attr`` writes (``value_json = json.dumps(value)``)."""
    from optuna.storages._rdb import models  # private module: here only
    from optuna.storages._rdb.storage import _create_scoped_session

    model = models.TrialUserAttributeModel
    engine = storage.engine.name
    with _create_scoped_session(storage.scoped_session, True) as session:
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        storage.check_trial_is_updatable(trial_id, trial.state)
        if engine == "postgresql" or (
            engine == "sqlite" and sqlite3.sqlite_version_info >= (3, 24)
        ):
            insert = _dialect_insert(engine)(model).values(
                [
                    {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                    for k, v in attrs.items()
                ]
            )
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=[model.trial_id, model.key],
                    set_={"value_json": insert.excluded.value_json},
                )
            )
            return
        for k, v in attrs.items():
            storage._set_trial_attr_without_commit(session, model, trial_id, k, v)


def _dialect_insert(engine: str) -> Any:
    if engine == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def journal_set_user_attrs(
    storage: optuna.storages.JournalStorage, trial_id: int, attrs: Mapping
) -> None:
    """Append ``attrs`` to a journal in one append (one lock, one write): one record per key, as
    ``set_trial_user_attr`` writes them (Optuna's replay takes one key per record). Optuna raises
    this worker's errors (``KeyError``, ``UpdateFinishedTrialError``) while it replays; every
    record is replayed before the first such error is raised, so none is left for a later read."""
    from optuna.storages.journal._storage import JournalOperation  # private module: here only

    op = {"op_code": JournalOperation.SET_TRIAL_USER_ATTR, "trial_id": trial_id}
    with storage._thread_lock:
        worker = storage._replay_result.worker_id
        storage._backend.append_logs(
            [{**op, "worker_id": worker, "user_attr": {k: v}} for k, v in attrs.items()]
        )
        first: Exception | None = None
        for _ in range(len(attrs) + 1):
            try:
                storage._sync_with_backend()
                break
            except (KeyError, optuna.exceptions.UpdateFinishedTrialError) as e:
                first = first or e  # replay goes on from the record after this one
        if first is not None:
            raise first


def cache_user_attrs(trial: optuna.Trial, attrs: Mapping) -> None:
    """Update a live trial's own copy (``Trial._cached_frozen_trial``; ``trial.user_attrs`` reads
    it) after ``attrs`` were written to its storage, as ``Trial.set_user_attr`` does."""
    trial._cached_frozen_trial.user_attrs.update(attrs)


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
