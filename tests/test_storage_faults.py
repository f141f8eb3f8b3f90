"""The pieces of issue 18 one by one: the journal's torn-tail repair (against Optuna's own reader),
the outage clock, the retry setting, what counts as a server away, SQLite faults in one line.
The whole searches are in ``tests/reliability/test_journal.py``, ``test_outage.py``, ``test_files.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from odeattn.search.storage import StorageFault, StorageUnavailable, _faults, _journal, make_storage


def _make_journal(path: Path, n: int = 3) -> bytes:
    s = optuna.create_study(study_name="j", storage=JournalStorage(JournalFileBackend(str(path))))
    for x in range(n):
        s.enqueue_trial({"x": x})
    return path.read_bytes()


def _plain(path: Path) -> list:  # Optuna's own reader, nothing of odeattn's
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.load_study(study_name="j", storage=storage).get_trials()


def test_optuna_alone_breaks_on_an_append_after_a_torn_record(tmp_path: Path) -> None:
    good = _make_journal(tmp_path / "j.log")
    (tmp_path / "j.log").write_bytes(good + b'{"op_code":5,"worker_id":"w","tri')
    assert len(_plain(tmp_path / "j.log")) == 3  # the torn record is skipped without a word ...
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    s = optuna.load_study(study_name="j", storage=storage)
    with pytest.raises(json.JSONDecodeError):  # ... and the next appends land after it
        for k in range(2):
            s.set_user_attr(f"k{k}", k)
    with pytest.raises(json.JSONDecodeError):
        _plain(tmp_path / "j.log")  # the defect of row 10, in Optuna itself


@pytest.mark.parametrize(
    "tail",
    [
        b'{"op_code":5,"worker_id":"w","tri',  # a write cut short
        b'{"op_code":5,"wor' + b"\0" * 300,  # the NUL bytes a crash can leave
        b"\0" * 4096,
        b'{"op_code":5,"worker_id":"w","trial_id":0,"st\n',  # a complete line, but not JSON
        b'{"op_co',
    ],
)
def test_a_torn_tail_is_cut_off_with_a_backup_and_one_warning(tmp_path, capsys, tail) -> None:
    path = tmp_path / "j.log"
    good = _make_journal(path)
    path.write_bytes(good + tail)
    storage = make_storage(str(path))  # opened through odeattn: repaired first
    assert path.read_bytes() == good
    (backup,) = tmp_path.glob("j.log.torn-*.bak")
    assert backup.read_bytes() == good + tail
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {path}: its last record was torn")
    assert f"({len(tail)} bytes after the last complete record" in err[0] and str(backup) in err[0]
    optuna.load_study(study_name="j", storage=storage).enqueue_trial({"x": 7})
    assert [t.system_attrs["fixed_params"]["x"] for t in _plain(path)] == [0, 1, 2, 7]


def test_a_complete_journal_is_left_alone(tmp_path: Path, capsys) -> None:
    path = tmp_path / "j.log"
    good = _make_journal(path)
    make_storage(str(path))
    assert path.read_bytes() == good and not list(tmp_path.glob("*.bak"))
    assert capsys.readouterr().err == ""


def test_an_append_after_a_failed_append_cuts_the_torn_tail_first(tmp_path, capsys) -> None:
    """A process whose append was torn (disk full) and a writer that comes after it: the lock
    every append takes cuts the tail before writing (no restart in between)."""
    path = tmp_path / "j.log"
    s = (
        optuna.load_study(study_name="j", storage=make_storage(str(path)))
        if _make_journal(path)
        else None
    )
    with open(path, "ab") as f:
        f.write(b'{"op_code":5,"worker_id":"w","trial_id":1')  # another writer's torn append
    s.enqueue_trial({"x": 8})
    assert [t.system_attrs["fixed_params"]["x"] for t in _plain(path)] == [0, 1, 2, 8]
    assert "its last record was torn" in capsys.readouterr().err


def test_garbage_at_the_end_or_in_the_middle_is_refused_not_repaired(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    good = _make_journal(path)
    path.write_bytes(good + b"\x89PNG\x1a garbage")
    with pytest.raises(StorageFault, match="its last line is not a journal record; line 5 of 5"):
        _journal.open_journal(str(path))
    lines = good.splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:1], b"{not json\n", *lines[1:]]))
    with pytest.raises(StorageFault, match="line 2 of 5 is the first that is no journal record"):
        _journal.open_journal(str(path))
    assert not list(tmp_path.glob("*.bak"))


def test_outage_clock_warns_once_backs_off_then_gives_up(monkeypatch, capsys) -> None:
    now = [100.0]
    monkeypatch.setattr(_faults.time, "monotonic", lambda: now[0])
    clock = _faults.Outage("postgresql+psycopg2://u:***@h/db", 20.0)
    err = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("Connection refused\nhint"))
    waits = []
    for attempt in range(6):
        waits.append(clock.failed(err, attempt))
        now[0] += waits[-1]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 4.5]  # the last one stops at the limit
    with pytest.raises(StorageUnavailable, match=r"unreachable for 20 s, longer than .*=20: Conn"):
        clock.failed(err, 6)
    with pytest.raises(StorageUnavailable):  # given up: every later call tries once only
        clock.failed(err, 0)
    assert capsys.readouterr().err == (
        "warning: storage postgresql+psycopg2://u:***@h/db unreachable (Connection refused); "
        "retrying for up to 20 s (ODEATTN_STORAGE_RETRY_S)\n"
    )
    clock.ok()  # the server answered: a later outage is a new one, with its own warning
    assert clock.failed(err, 0) == 0.5 and "warning" in capsys.readouterr().err


@pytest.mark.parametrize(("raw", "expect"), [(None, 120.0), ("30", 30.0), ("0", 0.0)])
def test_retry_seconds_from_the_environment(monkeypatch, raw, expect) -> None:
    if raw is None:
        monkeypatch.delenv("ODEATTN_STORAGE_RETRY_S", raising=False)
    else:
        monkeypatch.setenv("ODEATTN_STORAGE_RETRY_S", raw)
    assert _faults.retry_seconds() == expect


@pytest.mark.parametrize("raw", ["two minutes", "-1", "nan", "inf"])
def test_a_bad_retry_setting_says_how_to_fix_it(monkeypatch, raw) -> None:
    monkeypatch.setenv("ODEATTN_STORAGE_RETRY_S", raw)
    with pytest.raises(ValueError, match="`ODEATTN_STORAGE_RETRY_S` must be a number of seconds"):
        _faults.retry_seconds()


def test_transient_looks_through_optunas_wrapper() -> None:
    def wrapped(e: Exception) -> Exception:
        try:
            raise optuna.exceptions.StorageInternalError("… e.g. exceeding max length.") from e
        except optuna.exceptions.StorageInternalError as w:
            return w

    gone = sqlalchemy.exc.OperationalError("x", {}, Exception("server closed the connection"))
    assert _faults.transient(wrapped(gone)) and _faults.transient(gone)
    assert _faults.cause(wrapped(gone)) == "server closed the connection"
    dup = sqlalchemy.exc.IntegrityError("x", {}, Exception("UNIQUE constraint failed"))
    assert not _faults.transient(wrapped(dup)) and not _faults.transient(KeyError("study"))


def test_sqlite_errors_name_the_file(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    db.write_bytes(b"SQLite format 3\0" + b"\x07" * 4000)  # a header, then scribbles
    with pytest.raises(StorageFault, match=rf"^{db}: .* \(SQLite\); it is damaged"):
        make_storage(f"sqlite:///{db}")


def test_several_user_attributes_are_retried_as_one_call_through_an_outage(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """``GuardedStorage.set_trial_user_attrs`` (issue 20) goes through the same retry as every
    database call: a transient error, a pause, the whole batch again (an upsert), the values."""
    from odeattn.search.storage import _guarded, set_user_attrs

    storage = make_storage(f"sqlite:///{tmp_path}/o.db")
    trial = optuna.create_study(study_name="o", storage=storage).ask()
    storage.sqlite_file, storage.retry_s = None, 30.0  # as on a server: retried, not a fault
    monkeypatch.setattr(_guarded.time, "sleep", lambda s: None)
    write, calls = _guarded.rdb_set_user_attrs, []

    def flaky(*args):
        calls.append(1)
        if len(calls) == 1:
            raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("Connection refused"))
        return write(*args)

    monkeypatch.setattr(_guarded, "rdb_set_user_attrs", flaky)
    set_user_attrs(trial, {"a": 1, "b": [2.0]})
    assert len(calls) == 2 and "unreachable (Connection refused)" in capsys.readouterr().err
    again = optuna.load_study(study_name="o", storage=f"sqlite:///{tmp_path}/o.db")
    assert again.trials[0].user_attrs == {"a": 1, "b": [2.0]}


def test_an_interrupted_wait_gives_up_and_says_so_not_that_time_ran_out() -> None:
    clock = _faults.Outage("postgresql+psycopg2://u:***@h/db", 120.0)
    err = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("Connection refused"))
    assert clock.failed(err, 0) == 0.5
    clock.give_up()  # Ctrl-C during the wait
    with pytest.raises(StorageUnavailable, match=r"unreachable at the interrupt: Connection ref"):
        clock.failed(err, 0)
    clock.ok()  # the server answered: a later outage waits again
    assert clock.failed(err, 0) == 0.5


def test_interrupted_sees_a_fault_raised_while_handling_ctrl_c() -> None:
    def fault_in_handler() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise StorageUnavailable("storage x unreachable at the interrupt: refused") from None

    with pytest.raises(StorageUnavailable) as got:
        fault_in_handler()
    assert _faults.interrupted(got.value)  # `from None` hides it from tracebacks, not __context__
    assert not _faults.interrupted(StorageUnavailable("storage x unreachable for 130 s"))
