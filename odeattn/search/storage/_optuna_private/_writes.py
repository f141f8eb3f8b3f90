"""Writing a trial with fewer round trips through Optuna's internals (issue 20; see the package
face): batched user attributes and params, a tell without a read-back, a constraint without a read."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import optuna
from optuna.storages import BaseStorage

__all__ = [
    "cache_user_attrs",
    "cached_set_trial_params",
    "journal_set_trial_params",
    "journal_set_user_attrs",
    "kept_params",
    "rdb_set_trial_params",
    "rdb_set_user_attrs",
    "set_constraint",
    "tell",
]


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
    ``set_trial_user_attr`` writes them (Optuna's replay takes one key per record)."""
    from optuna.storages.journal._storage import JournalOperation  # private module: here only

    op = {"op_code": JournalOperation.SET_TRIAL_USER_ATTR, "trial_id": trial_id}
    _journal_append(storage, [{**op, "user_attr": {k: v}} for k, v in attrs.items()])


def journal_set_trial_params(
    storage: optuna.storages.JournalStorage, trial_id: int, params: Mapping
) -> None:
    """Append ``params`` (``{name: (internal value, distribution)}``) to a journal in one append:
    one record per param, as ``set_trial_param`` writes them."""
    from optuna.distributions import distribution_to_json
    from optuna.storages.journal._storage import JournalOperation  # private module: here only

    op = {"op_code": JournalOperation.SET_TRIAL_PARAM, "trial_id": trial_id}
    _journal_append(
        storage,
        [
            {
                **op,
                "param_name": k,
                "param_value_internal": v,
                "distribution": distribution_to_json(d),
            }
            for k, (v, d) in params.items()
        ],
    )


def _journal_append(storage: optuna.storages.JournalStorage, records: list[dict]) -> None:
    """Append ``records`` in one append and replay them. Optuna raises this worker's errors
    (``KeyError``, ``UpdateFinishedTrialError``, an incompatible distribution's ``ValueError``)
    while it replays; every record is replayed before the first such error is raised, so none
    is left for a later read."""
    with storage._thread_lock:
        worker = storage._replay_result.worker_id
        storage._backend.append_logs([{**r, "worker_id": worker} for r in records])
        first: Exception | None = None
        for _ in range(len(records) + 1):
            try:
                storage._sync_with_backend()
                break
            except (KeyError, ValueError, optuna.exceptions.UpdateFinishedTrialError) as e:
                first = first or e  # replay goes on from the record after this one
        if first is not None:
            raise first


def rdb_set_trial_params(
    storage: optuna.storages.RDBStorage, trial_id: int, params: Mapping, known: Mapping
) -> None:
    """Write ``params`` (``{name: (internal value, distribution)}``) of trial ``trial_id`` in one
    transaction, checked as Optuna's write of one param checks it
    (``_set_trial_param_without_commit``): the trial is updatable (once), each distribution
    compatible with the study's (``known``: those Optuna's cache knows, as
    ``_CachedStorage.set_trial_param`` passes them; else the study's stored one); then the same
    rows, inserted in one flush."""
    from optuna.distributions import (
        check_distribution_compatibility,
        distribution_to_json,
        json_to_distribution,
    )
    from optuna.storages._rdb import models  # private module: here only
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session, True) as session:
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        storage.check_trial_is_updatable(trial_id, trial.state)
        for name, (_, dist) in params.items():
            previous = known.get(name)
            if previous is None:
                record = (
                    session.query(models.TrialParamModel)
                    .join(models.TrialModel)
                    .filter(models.TrialModel.study_id == trial.study_id)
                    .filter(models.TrialParamModel.param_name == name)
                    .first()
                )
                previous = record and json_to_distribution(record.distribution_json)
            if previous is not None:
                check_distribution_compatibility(previous, dist)
        session.add_all(
            models.TrialParamModel(
                trial_id=trial_id,
                param_name=name,
                param_value=value,
                distribution_json=distribution_to_json(dist),
            )
            for name, (value, dist) in params.items()
        )


def cached_set_trial_params(
    storage: BaseStorage, trial_id: int, params: Mapping, write: Any
) -> None:
    """``params`` of trial ``trial_id`` through Optuna's cache of an RDB storage, as
    ``_CachedStorage.set_trial_param`` writes one: ``write(trial_id, params, known)`` under the
    cache's lock with the distributions it knows, which then learns the new ones."""
    with storage._lock:
        study_id, _ = storage._trial_id_to_study_id_and_number[trial_id]
        known = storage._studies[study_id].param_distribution
        write(trial_id, params, dict(known))
        for name, (_, dist) in params.items():
            known.setdefault(name, dist)


class _KeptParams:
    """A trial's storage while its params are kept (:func:`kept_params`): every call goes to the
    storage, except ``set_trial_param``, which is kept."""

    def __init__(self, storage: BaseStorage) -> None:
        self.storage, self.kept = storage, {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)

    def set_trial_param(self, trial_id: int, name: str, value: float, dist: Any) -> None:
        self.kept[name] = (value, dist)


@contextlib.contextmanager
def kept_params(trial: optuna.Trial) -> Iterator[dict]:
    """While the block runs, the params the trial's ``suggest_*`` calls write (each one
    ``trial.storage.set_trial_param`` in ``Trial._suggest``, after the live trial's own copy is
    read and before it is updated) are kept instead; yields them, ``{name: (internal value,
    distribution)}`` in the order suggested, for the caller to write after the block."""
    keep = _KeptParams(trial.storage)
    trial.storage = keep
    try:
        yield keep.kept
    finally:
        trial.storage = keep.storage


def cache_user_attrs(trial: optuna.Trial, attrs: Mapping) -> None:
    """Update a live trial's own copy (``Trial._cached_frozen_trial``; ``trial.user_attrs`` reads
    it) after ``attrs`` were written to its storage, as ``Trial.set_user_attr`` does."""
    trial._cached_frozen_trial.user_attrs.update(attrs)
