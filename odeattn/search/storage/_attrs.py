"""Several user attributes (or params) of a trial in one storage write, where one each was.

Optuna has no batch setter: each ``Trial.set_user_attr`` is its own transaction (an RDB storage:
a session, a SELECT, an upsert, a commit; a journal: the lock, an append, a re-read), and a trial
writes ~20 attributes at its end (``record_trial``, the replicates' aggregate): at commit 8975bba
they were the largest part of odeattn's own cost per trial (``benchmarks/bench_scale.py --profile
--trials 200 --storage sqlite --sampler random``: 5,116 ``set_trial_user_attr`` calls, 12.1 of
28.8 s of CPU; with this module 400 batched and 716 single writes, 3.3 s; issue 20).
:func:`set_user_attrs` writes a mapping

* on an RDB storage in one transaction (``GuardedStorage.set_trial_user_attrs``: retried through
  a server's outage as one call; a plain ``RDBStorage``: the same write, not retried);
* on a journal in one append of one record per key (what ``set_user_attr`` appends, so every
  reader of the file, optuna-dashboard included, reads them unchanged);
* anywhere else (in-memory storage, a duck-typed trial with ``set_user_attr``) one by one.

The stored rows are exactly those of ``set_user_attr`` per key (same keys, same JSON), so readers
and studies written before are unaffected. Errors are Optuna's own: ``UpdateFinishedTrialError``
for a finished trial (then nothing is written on an RDB storage), ``TypeError`` for a value that
is not JSON.

The params a trial samples are written the same way (:func:`params_in_one_write`: ``sample``
suggests ~10 params, and each ``suggest_*`` was its own transaction): kept while the block runs,
then written in one transaction (RDB) or one append (journal) as the same rows
``Trial.suggest_*`` writes, checked as Optuna checks one (the trial is RUNNING, a distribution
agrees with the study's). Nothing reads a trial's stored params while it samples: the sampler
reads the live trial's own copy, which ``suggest_*`` updates as before, and other workers look at
a RUNNING trial's params only once it claims their training (after sampling). A block that
raises writes what it kept, then the error goes on; a process killed inside the block leaves
its trial without params (recovery re-queues it with none: it is sampled afresh).

An attribute that no other process needs at once can wait for the trial's next write
(:func:`defer_user_attrs`: the per-epoch ``intermediate`` values at an epoch no pruning rule
reads): it goes with the next :func:`set_user_attrs` of the trial (its results) or, at the
latest, before the trial is told (:func:`tell`: every tell of the worker, also of a failed or
re-queued trial). A process killed before that loses it with the trial (re-queued as stale).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import optuna

from odeattn.search.storage._guarded import GuardedStorage
from odeattn.search.storage._optuna_private import (
    backend_of,
    cache_user_attrs,
    cached_set_trial_params,
    is_optuna_trial,
    journal_set_trial_params,
    journal_set_user_attrs,
    kept_params,
    rdb_set_trial_params,
    rdb_set_user_attrs,
    trial_id_of,
)
from odeattn.search.storage._optuna_private import set_constraint as _set_constraint
from odeattn.search.storage._optuna_private import tell as _tell

__all__ = [
    "defer_user_attrs",
    "flush_user_attrs",
    "params_in_one_write",
    "set_constraint",
    "set_user_attrs",
    "tell",
]

#: A trial's attributes kept for its next write (:func:`defer_user_attrs`), by trial object.
_PENDING: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def defer_user_attrs(trial: Any, attrs: Mapping[str, Any]) -> None:
    """Keep ``attrs`` for ``trial``'s next write (a later value of a key replaces the kept one)."""
    _PENDING.setdefault(trial, {}).update(attrs)


def flush_user_attrs(trial: Any) -> None:
    """Write ``trial``'s kept attributes, if any (one write)."""
    set_user_attrs(trial, {})


def tell(
    study: optuna.Study,
    trial: optuna.Trial,
    values: float | list[float] | None = None,
    state: optuna.trial.TrialState | None = None,
) -> None:
    """Tell ``trial`` after writing its kept attributes; Optuna's tell without reading the trial
    back (``_optuna_private.tell``)."""
    flush_user_attrs(trial)
    _tell(study, trial, values, state)


def set_user_attrs(trial: Any, attrs: Mapping[str, Any]) -> None:
    """Write every ``key: value`` of ``attrs`` as a user attribute of ``trial`` (a live
    ``optuna.Trial``: in one storage write; any object with ``set_user_attr``: one by one),
    with the attributes kept for it (:func:`defer_user_attrs`; ``attrs`` wins over them)."""
    attrs = {**_PENDING.pop(trial, {}), **attrs}
    if not attrs:
        return
    if not is_optuna_trial(trial):
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        return
    backend, tid = backend_of(trial.storage), trial_id_of(trial)
    if isinstance(backend, GuardedStorage):
        backend.set_trial_user_attrs(tid, attrs)
    elif isinstance(backend, optuna.storages.RDBStorage):
        rdb_set_user_attrs(backend, tid, attrs)
    elif isinstance(backend, optuna.storages.JournalStorage):
        journal_set_user_attrs(backend, tid, attrs)
    else:
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        return
    cache_user_attrs(trial, attrs)


def set_constraint(trial: Any, key: str, value: float) -> None:
    """``trial.set_constraint(key, value)``; a live ``optuna.Trial`` without Optuna's read of
    the whole trial first (``_optuna_private.set_constraint``: the one write, the same row)."""
    if is_optuna_trial(trial):
        _set_constraint(trial, key, value)
    else:
        trial.set_constraint(key, value)


@contextlib.contextmanager
def params_in_one_write(trial: Any) -> Iterator[None]:
    """The params ``trial`` (a live ``optuna.Trial``) is asked for while the block runs, written
    in one storage write when it ends (see the module docstring); any other trial: as they come."""
    if not is_optuna_trial(trial):
        yield
        return
    storage, tid = trial.storage, trial_id_of(trial)
    with kept_params(trial) as kept:
        try:
            yield
        except BaseException as e:
            try:
                _set_params(storage, tid, kept)
            except Exception as f:  # the block's error goes on, this one told beside it
                e.add_note(f"and its params were not stored: {type(f).__name__}: {f}")
            raise
    _set_params(storage, tid, kept)


def _set_params(storage: Any, tid: int, kept: dict[str, Any]) -> None:
    backend = backend_of(storage)
    if not kept:
        return
    if isinstance(backend, GuardedStorage):
        cached_set_trial_params(storage, tid, kept, backend.set_trial_params)
    elif isinstance(backend, optuna.storages.RDBStorage):
        write = functools.partial(rdb_set_trial_params, backend)
        cached_set_trial_params(storage, tid, kept, write)
    elif isinstance(backend, optuna.storages.JournalStorage):
        journal_set_trial_params(backend, tid, kept)
    else:
        for name, (value, dist) in kept.items():
            storage.set_trial_param(tid, name, value, dist)
