"""The one place odeattn reaches into Optuna's internals, where Optuna has no public API.

Optuna 4/5 expose no public accessor for a study's storage or id, for a live trial's storage id,
for "is heartbeat on for this storage" or for "which RUNNING trials have a stale heartbeat" (only
``optuna.storages.fail_stale_trials``, which fails them without telling which). odeattn needs
these to record heartbeats from its own thread, to label and re-queue stale trials, to tell an
``optuna.Trial`` from a duck-typed one, and to read only the trials that changed (Optuna's
``get_trials`` builds and sorts the list of every trial at each call: O(N) per read, issue 20). Every such access goes through this module, and
``tests/test_optuna_private.py`` checks each against the installed Optuna, so an Optuna release
that moves one fails that test loudly instead of breaking a search at run time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

__all__ = [
    "changed_trials",
    "heartbeat_enabled",
    "is_optuna_trial",
    "stale_trial_ids",
    "storage_of",
    "study_id_of",
    "trial_id_of",
]


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
