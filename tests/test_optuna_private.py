"""Every Optuna internal odeattn uses (``odeattn.search.storage._optuna_private``) checked against the
installed Optuna: if a release moves one, this fails here, loudly, not a search at run time."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from odeattn.search.storage import _optuna_private as op


def test_ids_and_storage_match_the_public_storage_api() -> None:
    study = optuna.create_study(study_name="p")
    trial = study.ask()
    storage = op.storage_of(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    assert op.study_id_of(study) == storage.get_study_id_from_name("p")
    tid = storage.get_trial_id_from_study_id_trial_number(op.study_id_of(study), trial.number)
    assert op.trial_id_of(trial) == tid
    study.tell(trial, 1.0)
    assert op.trial_id_of(study.trials[0]) == tid  # the frozen trial carries the same id
    assert op.is_optuna_trial(trial) and not op.is_optuna_trial(study.trials[0])


def test_heartbeat_and_stale_trials_on_an_rdb_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    plain = optuna.storages.RDBStorage(url)
    assert not op.heartbeat_enabled(plain)
    beating = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    assert op.heartbeat_enabled(beating)
    assert not op.heartbeat_enabled(optuna.storages.InMemoryStorage())
    study = optuna.create_study(study_name="h", storage=beating)
    trial = study.ask()
    beating.record_heartbeat(op.trial_id_of(trial))
    assert op.stale_trial_ids(study) == []
    time.sleep(2.2)  # past the 1-s grace period
    assert op.stale_trial_ids(study) == [op.trial_id_of(trial)]
    assert study.trials[0].state == TrialState.RUNNING  # only reported, not failed


@pytest.mark.parametrize("name", ["_storage", "_study_id"])
def test_study_still_has_the_private_attribute(name: str) -> None:
    assert hasattr(optuna.create_study(), name), f"optuna {optuna.__version__} moved Study.{name}"


def test_every_database_call_of_the_cache_and_the_heartbeat_is_retried() -> None:
    """``_CachedStorage`` and ``fail_stale_trials`` call their backend's methods (some private):
    each one that opens a database session must be in ``RDB_CALLS`` (else it is not retried
    through a server outage), and each name there must exist on ``RDBStorage``."""
    import inspect
    import re

    from optuna.storages import _cached_storage, _heartbeat

    called = set(re.findall(r"_backend\.(\w+)\(", inspect.getsource(_cached_storage)))
    called |= set(
        re.findall(r"storage\.(_?\w+)\(", inspect.getsource(_heartbeat.fail_stale_trials))
    )
    no_database = {"get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
    assert called - no_database <= set(op.RDB_CALLS), called - no_database - set(op.RDB_CALLS)
    missing = [
        n for n in op.RDB_CALLS if not callable(getattr(optuna.storages.RDBStorage, n, None))
    ]
    assert not missing, f"optuna {optuna.__version__} has no RDBStorage.{missing}"


def test_backend_of_sees_through_the_cache(tmp_path: Path) -> None:
    rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/c.db")
    study = optuna.create_study(storage=rdb)
    assert op.storage_of(study) is not rdb  # Optuna wrapped it in its cache
    assert op.backend_of(op.storage_of(study)) is rdb
    memory = optuna.storages.InMemoryStorage()
    assert op.backend_of(memory) is memory


def test_changed_trials_reads_new_and_listed_trials_from_the_rdb_cache(tmp_path: Path) -> None:
    assert op.changed_trials(optuna.create_study(), 0, []) is None  # no cache: read every trial
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/c.db")
    for v in range(4):
        study.add_trial(optuna.trial.create_trial(value=float(v)))
    running = study.ask()
    n, got = op.changed_trials(study, 3, [1])
    assert n == 5 and sorted(got) == [1, 3, 4]
    assert got[4].state == TrialState.RUNNING and got[1].value == 1.0
    study.tell(running, 9.0)  # a change made elsewhere is read again
    other = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{tmp_path}/c.db")
    assert op.changed_trials(other, 0, [])[0] == 5
    n, got = op.changed_trials(study, 5, [4])
    assert n == 5 and got[4].state == TrialState.COMPLETE and got[4].value == 9.0
