"""Every Optuna internal odeattn uses (``odeattn.search.storage._optuna_private``) checked against the
installed Optuna: if a release moves one, this fails here, loudly, not a search at run time."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

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


# Several user attributes in one storage write (issue 20): the rows Optuna's set_user_attr writes.
_ATTRS = {"a": 1, "b": [1.5, None], "c": {"x": "y"}, "d": None, "e": "text"}


def _storages(tmp_path: Path) -> dict[str, optuna.storages.BaseStorage]:
    from odeattn.search.storage import make_storage

    journal = optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))
    return {
        "sqlite": optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/r.db"),
        "guarded": make_storage(f"sqlite:///{tmp_path}/g.db"),  # odeattn's retrying RDBStorage
        "journal": optuna.storages.JournalStorage(journal),
        "odeattn-journal": make_storage(str(tmp_path / "o.log")),
        "memory": optuna.storages.InMemoryStorage(),
    }


@pytest.mark.parametrize("kind", ["sqlite", "guarded", "journal", "odeattn-journal", "memory"])
def test_set_user_attrs_stores_what_set_user_attr_stores(tmp_path: Path, kind: str) -> None:
    from odeattn.search.storage import set_user_attrs

    storage = _storages(tmp_path)[kind]
    study = optuna.create_study(study_name="u", storage=storage)
    one, many = study.ask(), study.ask()
    for k, v in _ATTRS.items():
        one.set_user_attr(k, v)
    many.set_user_attr("a", -1)  # an attribute written before is overwritten (an upsert)
    set_user_attrs(many, _ATTRS)
    set_user_attrs(many, {})  # nothing: no write
    assert many.user_attrs == _ATTRS  # the live trial's own copy, as set_user_attr keeps it
    again = optuna.load_study(study_name="u", storage=storage).trials
    assert again[0].user_attrs == again[1].user_attrs == _ATTRS
    if kind in ("sqlite", "journal"):  # read back by a fresh reader of the file
        fresh = _storages(tmp_path)[kind]
        assert optuna.load_study(study_name="u", storage=fresh).trials[1].user_attrs == _ATTRS
    if kind != "memory":  # (the in-memory storage keeps any object)
        with pytest.raises(TypeError):
            set_user_attrs(many, {"f": object()})  # not JSON: Optuna's own error, nothing kept
        assert optuna.load_study(study_name="u", storage=storage).trials[1].user_attrs == _ATTRS


def test_set_user_attrs_is_one_transaction_on_sqlite_and_one_append_on_a_journal(
    tmp_path: Path,
) -> None:
    import sqlalchemy

    from odeattn.search.storage import set_user_attrs

    storages = _storages(tmp_path)
    rdb = storages["guarded"]
    commits: list[int] = []
    sqlalchemy.event.listen(rdb.engine, "commit", lambda conn: commits.append(1))
    trial = optuna.create_study(storage=rdb).ask()
    commits.clear()
    set_user_attrs(trial, _ATTRS)
    assert len(commits) == 1  # set_user_attr: one commit per attribute (5)
    journal = storages["journal"]
    trial = optuna.create_study(storage=journal).ask()
    appends: list[int] = []
    append = journal._backend.append_logs
    journal._backend.append_logs = lambda logs: (appends.append(len(logs)), append(logs))[1]
    set_user_attrs(trial, _ATTRS)
    assert appends == [len(_ATTRS)]  # one append, one record per key (Optuna's replay format)


@pytest.mark.parametrize("kind", ["sqlite", "guarded", "journal"])
def test_set_user_attrs_on_a_finished_trial_raises_and_leaves_no_debt(
    tmp_path: Path, kind: str
) -> None:
    from odeattn.search.storage import set_user_attrs

    storage = _storages(tmp_path)[kind]
    study = optuna.create_study(study_name="f", storage=storage)
    done = study.ask()
    study.tell(done, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(done, _ATTRS)
    assert study.trials[0].user_attrs == {}  # nothing written (journal: not replayed)
    later = study.ask()  # no record of the batch is left to raise at a later read
    set_user_attrs(later, {"ok": True})
    assert [t.user_attrs for t in study.trials] == [{}, {"ok": True}]
    write = op.journal_set_user_attrs if kind == "journal" else op.rdb_set_user_attrs
    with pytest.raises(KeyError):
        write(storage, 999, {"x": 1})  # no such trial: Optuna's own error


def test_set_user_attrs_of_a_stand_in_calls_its_set_user_attr() -> None:
    from odeattn.search.storage import set_user_attrs

    class StandIn:
        def __init__(self) -> None:
            self.got: list[tuple[str, object]] = []

        def set_user_attr(self, key: str, value: object) -> None:
            self.got.append((key, value))

    t = StandIn()
    set_user_attrs(t, _ATTRS)
    assert t.got == list(_ATTRS.items())


def test_journal_file_of_names_the_journals_file(tmp_path: Path) -> None:
    from optuna.storages.journal import JournalFileBackend

    path = tmp_path / "j.log"
    assert op.journal_file_of(optuna.storages.JournalStorage(JournalFileBackend(str(path)))) == path
    assert op.journal_file_of(optuna.storages.InMemoryStorage()) is None


def test_lock_study_row_holds_the_lock_optuna_numbers_trials_under(tmp_path: Path) -> None:
    """The row lock is the one Optuna's trial creation takes (``SELECT … FOR UPDATE`` on the
    study's row), held by a session of its own until it is closed."""
    import inspect

    from optuna.storages._rdb import models, storage

    assert "with_for_update()" in inspect.getsource(models.StudyModel.find_or_raise_by_id)
    create = inspect.getsource(storage.RDBStorage._create_new_trial)
    assert "StudyModel.find_or_raise_by_id(study_id, session, for_update=True)" in create
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/r.db")
    session = op.lock_study_row(op.storage_of(study), op.study_id_of(study))
    assert session.in_transaction()  # the row read inside an open transaction: held
    session.close()
    assert not session.in_transaction()
    with pytest.raises(KeyError):
        op.lock_study_row(op.storage_of(study), op.study_id_of(study) + 1)


# Fewer round trips per trial (issue 20): the same stored rows as Optuna's public calls.
_KINDS = ["sqlite", "guarded", "journal", "odeattn-journal", "memory"]


def _stored(storage: optuna.storages.BaseStorage, name: str) -> list[tuple]:
    """What a fresh reader of the study sees of each trial (cache emptied where there is one)."""
    fresh = optuna.load_study(study_name=name, storage=storage)
    return [
        (t.state, t.values, t.params, t.distributions, t.user_attrs, t.system_attrs, t.constraints)
        for t in fresh.get_trials(deepcopy=False)
    ]


def _reads(storage: optuna.storages.BaseStorage) -> list[str]:
    """Record every ``get_trial`` call on ``storage`` (the backend under Optuna's cache)."""
    backend, got = op.backend_of(storage), []
    read = backend.get_trial
    backend.get_trial = lambda tid: (got.append("get_trial"), read(tid))[1]
    return got


@pytest.mark.parametrize("kind", _KINDS)
def test_tell_stores_what_study_tell_stores_and_does_not_read_back(
    tmp_path: Path, kind: str
) -> None:
    storage = _storages(tmp_path)[kind]
    study = optuna.create_study(study_name="t", storage=storage, directions=["maximize"] * 2)
    a, b, c, d = (study.ask() for _ in range(4))
    reads = _reads(storage)
    study.tell(a, [1.0, 2.0])
    study.tell(b, state=TrialState.PRUNED)
    public = len(reads)
    op.tell(study, c, [1.0, 2.0])
    op.tell(study, d, state=TrialState.PRUNED)
    s = _stored(storage, "t")
    assert s[0][:2] == s[2][:2] == (TrialState.COMPLETE, [1.0, 2.0])
    assert s[1][:2] == s[3][:2] == (TrialState.PRUNED, None)
    if kind in ("sqlite", "guarded"):  # Study.tell reads the trial twice, op.tell once
        assert (public, len(reads) - public) == (4, 2)
    with pytest.raises(ValueError, match="Cannot tell a COMPLETE trial"):
        op.tell(study, c, [1.0, 2.0])  # Optuna's own check


@pytest.mark.parametrize("kind", _KINDS)
def test_set_constraint_stores_what_trial_set_constraint_stores(tmp_path: Path, kind: str) -> None:
    storage = _storages(tmp_path)[kind]
    study = optuna.create_study(study_name="c", storage=storage)
    a, b = study.ask(), study.ask()
    a.set_constraint("acc", 0.25)
    a.set_constraint("size", -1)
    reads = _reads(storage)
    op.set_constraint(b, "acc", 0.25)
    op.set_constraint(b, "size", -1)
    assert reads == []  # Trial.set_constraint reads the whole trial first, each time
    with pytest.warns(UserWarning, match="already set"):
        op.set_constraint(b, "acc", 9.0)  # ignored, as Optuna ignores it
    with pytest.raises(ValueError, match="NaN"):
        op.set_constraint(b, "x", float("nan"))
    with pytest.raises(TypeError):
        op.set_constraint(b, "x", "high")  # type: ignore[arg-type]
    study.tell(a, 1.0)
    study.tell(b, 1.0)
    s = _stored(storage, "c")
    assert s[0][5:] == s[1][5:] and s[1][6] == {
        "acc": 0.25,
        "size": -1.0,
    }  # system attrs, constraints
    assert b._cached_frozen_trial.system_attrs == a._cached_frozen_trial.system_attrs


def _suggest(trial: optuna.Trial) -> dict:
    return {
        "x": trial.suggest_float("x", 0.0, 1.0),
        "n": trial.suggest_int("n", 1, 9, step=2),
        "c": trial.suggest_categorical("c", ["a", None, 3]),
        "lr": trial.suggest_float("lr", 1e-3, 1.0, log=True),
    }


def _counted(fn: Any, count: Any) -> Any:
    return lambda *a: (count(), fn(*a))[1]


@pytest.mark.parametrize("kind", _KINDS)
def test_params_in_one_write_stores_what_suggest_stores(tmp_path: Path, kind: str) -> None:
    """The same params, distributions and sampled values as suggesting one by one (TPE, seeded:
    the sampler sees the same study); one commit on SQLite, one append on a journal."""
    import sqlalchemy

    from odeattn.search.storage import params_in_one_write

    storage = _storages(tmp_path)[kind]
    got, commits = [], []

    def count(*_: object) -> None:
        commits.append(1)

    for name, batched in (("one", False), ("many", True)):
        study = optuna.create_study(
            study_name=name, storage=storage, sampler=optuna.samplers.TPESampler(seed=3)
        )
        for i in range(8):  # past TPE's 10 start-up trials with the last ones
            trial = study.ask()
            if batched and i == 7:
                backend = op.backend_of(storage)
                if kind in ("sqlite", "guarded"):
                    sqlalchemy.event.listen(backend.engine, "commit", count)
                if kind in ("journal", "odeattn-journal"):
                    backend._backend.append_logs = _counted(backend._backend.append_logs, count)
                with params_in_one_write(trial):
                    values = _suggest(trial)
                    assert trial.params == values  # the live trial's own copy, at once
                    if kind in ("sqlite", "guarded"):  # nothing stored yet
                        assert backend.get_trial(trial._trial_id).params == {}
                    inside = len(commits)  # every RDB session commits, reads too
                    assert inside == 0 or kind in ("sqlite", "guarded")  # no journal append
                assert len(commits) - inside == (0 if kind == "memory" else 1)
            else:
                with params_in_one_write(trial) if batched else contextlib.nullcontext():
                    values = _suggest(trial)
            study.tell(trial, values["x"] + values["n"])
        got.append(_stored(storage, name))
    assert got[0] == got[1]


@pytest.mark.parametrize("kind", ["guarded", "journal", "memory"])
def test_params_in_one_write_raises_optunas_errors(tmp_path: Path, kind: str) -> None:
    from odeattn.search.storage import params_in_one_write

    storage = _storages(tmp_path)[kind]
    study = optuna.create_study(study_name="e", storage=storage)
    first = study.ask()
    first.suggest_float("x", 0.0, 1.0)
    study.tell(first, 1.0)
    trial = study.ask()
    with pytest.raises(ValueError, match="different distribution kind"), params_in_one_write(trial):
        trial.suggest_int("y", 0, 3)  # x was a float in this study
        trial.suggest_categorical("x", ["a", "b"])
    assert trial.storage is op.storage_of(study)  # the trial's storage is its own again
    with pytest.raises(RuntimeError, match="boom") as e, params_in_one_write(trial):
        trial.suggest_int("z", 0, 3)  # a block that raises: what it kept is stored
        raise RuntimeError("boom")
    assert not getattr(e.value, "__notes__", None)
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError), params_in_one_write(trial):
        trial.suggest_int("w", 0, 3)
    assert "z" in _stored(storage, "e")[1][2] and "w" not in _stored(storage, "e")[1][2]


def test_rdb_set_trial_params_checks_what_optunas_one_param_write_checks() -> None:
    """``rdb_set_trial_params`` repeats the checks of Optuna's one-param write (once per trial,
    not once per param): if Optuna adds one, this fails."""
    import inspect

    from optuna.storages._rdb.storage import RDBStorage

    src = inspect.getsource(RDBStorage._set_trial_param_without_commit)
    calls = set(re.findall(r"([A-Za-z_.]+)\(", src)) - {"_set_trial_param_without_commit"}
    assert calls == {
        "models.TrialModel.find_or_raise_by_id",
        "self.check_trial_is_updatable",
        "session.query",
        ".join",
        ".filter",
        ".first",
        "distributions.json_to_distribution",
        "distributions.check_distribution_compatibility",
        "models.TrialParamModel",
        "distributions.distribution_to_json",
        "session.add",
    }, calls
