"""Issue 20, exactly once under concurrency: a configuration handed to two workers at the same
time is trained by one of them; the other waits for it and is served its result.

Before: the duplicate lookup saw finished trials only, so two workers sampling one configuration
while neither had finished both trained it (the 8-worker bench_scale cells: one configuration
trained twice in 10,000 trials, on SQLite and on PostgreSQL). Now a trial claims its
configuration under the study's lock (``storage.study_lock``) and waits for a running claim.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState
from test_postgres import pg_url  # noqa: F401  (the module's PostgreSQL server fixture)

from odeattn.search.backends.optuna import _worker as backend
from odeattn.search.backends.optuna._duplicate import (
    _COPIED,
    TRAINS,
    claim,
    serve_duplicate,
    wait_for,
)
from odeattn.search.storage import budget_used, make_storage, study_lock
from odeattn.search.trial import Deadline, _replicates
from odeattn.study.config._load import load_study

ROOT = Path(__file__).resolve().parents[1]
optuna.logging.set_verbosity(optuna.logging.WARNING)
D = {"x": CategoricalDistribution([1, 2])}
PASSED = Deadline(at=0.0)  # a deadline long gone


def _url(kind: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/c.db" if kind == "sqlite" else str(tmp_path / "c.log")


def _two(url: str | None, name: str = "claims") -> tuple[optuna.Study, optuna.Study]:
    """Two study objects on one storage, as two worker processes hold them (own ledgers)."""
    storage = make_storage(url) if url else optuna.storages.InMemoryStorage()
    s1 = optuna.create_study(storage=storage, study_name=name)
    return s1, optuna.load_study(study_name=name, storage=storage)


def _same(s1: optuna.Study, s2: optuna.Study) -> tuple[optuna.Trial, optuna.Trial]:
    """Each worker asks a trial and is handed x=1 (both RUNNING, params written)."""
    s1.enqueue_trial({"x": 1})
    s1.enqueue_trial({"x": 1})
    return s1.ask(D), s2.ask(D)


@pytest.mark.parametrize("kind", ["sqlite", "journal", "memory"])
def test_of_two_trials_handed_one_configuration_one_trains_the_other_is_served(
    tmp_path: Path, kind: str
) -> None:
    s1, s2 = _two(None if kind == "memory" else _url(kind, tmp_path))
    t1, t2 = _same(s1, s2)
    assert t1.params == t2.params == {"x": 1}
    assert claim(s1, t1) is None  # the first claim: t1 trains x=1
    assert claim(s2, t2) == t1.number  # before: None too (t1 unfinished), and both trained
    assert wait_for(s2, t1.number, PASSED) is False  # not finished: the deadline stops the wait
    s1.tell(t1, 0.5)
    assert wait_for(s2, t1.number) is True
    served = claim(s2, t2)
    assert isinstance(served, FrozenTrial) and served.number == t1.number
    trials = s1.get_trials()
    assert trials[t1.number].user_attrs == {TRAINS: True}
    assert TRAINS not in trials[t2.number].user_attrs


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_claim_whose_trainer_ended_without_a_result_passes_to_the_waiter(
    tmp_path: Path, kind: str
) -> None:
    s1, s2 = _two(_url(kind, tmp_path))
    t1, t2 = _same(s1, s2)
    assert claim(s1, t1) is None and claim(s2, t2) == t1.number
    t1.set_user_attr("odeattn_stale", True)  # its worker died: failed as stale by recovery
    s1.tell(t1, state=TrialState.FAIL)
    assert wait_for(s2, t1.number) is True
    assert claim(s2, t2) is None  # no result to serve and no one training: t2 trains
    assert s2.get_trials()[t2.number].user_attrs[TRAINS] is True


def test_a_trial_waiting_at_the_deadline_is_requeued(tmp_path: Path) -> None:
    s1, s2 = _two(_url("sqlite", tmp_path))
    t1, t2 = _same(s1, s2)
    assert claim(s1, t1) is None
    events: list[tuple[str, dict]] = []
    assert backend._served(s2, t2, lambda *e: events.append(e), PASSED) is True
    got = s2.get_trials()[t2.number]
    assert got.state == TrialState.FAIL and got.user_attrs["odeattn_stale"] is True
    assert got.user_attrs["odeattn_waited_for"] == t1.number
    waiting = [t for t in s2.get_trials() if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].user_attrs["odeattn_retry_of"] == t2.number
    assert [k for k, _ in events] == ["waiting", "requeued"]
    assert budget_used(s2) == 1  # t1 only: the waiter holds no budget slot


def _fresh_reader(kind: str, tmp_path: Path) -> optuna.storages.BaseStorage:
    """Plain Optuna storage on the same file (not odeattn's cached one): what is on disk."""
    if kind == "sqlite":
        return optuna.storages.RDBStorage(_url(kind, tmp_path))
    backend = optuna.storages.journal.JournalFileBackend(_url(kind, tmp_path))
    return optuna.storages.JournalStorage(backend)


@contextlib.contextmanager
def _user_attr_writes(kind: str, storage: Any) -> Iterator[list[int]]:
    """Per storage write (an SQLite commit, a journal append) that writes user attributes:
    how many statements (SQLite: a multi-row upsert is one) or records (journal) it holds."""
    import sqlalchemy
    from optuna.storages.journal._storage import JournalOperation

    writes: list[int] = []
    pending: list[int] = []
    if kind == "journal":
        append = storage._backend.append_logs

        def counted(logs: list[dict[str, Any]]) -> None:
            ops = [log for log in logs if log["op_code"] == JournalOperation.SET_TRIAL_USER_ATTR]
            writes.extend([len(ops)] if ops else [])
            append(logs)

        storage._backend.append_logs = counted
        try:
            yield writes
        finally:
            del storage._backend.append_logs  # the class's method again
        return

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if "trial_user_attributes" in sql and sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            pending.append(1)

    def commit(conn: Any) -> None:
        writes.extend([len(pending)] if pending else [])
        pending.clear()

    listeners = (("before_cursor_execute", statement), ("commit", commit))
    for name, fn in listeners:
        sqlalchemy.event.listen(storage.engine, name, fn)
    try:
        yield writes
    finally:
        for name, fn in listeners:
            sqlalchemy.event.remove(storage.engine, name, fn)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_served_duplicate_stores_the_originals_attributes_in_one_write(
    tmp_path: Path, kind: str
) -> None:
    """Issue 20: ``serve_duplicate`` writes the copied attributes and ``duplicate_of`` in one
    storage write (before: one per attribute, 21 here); a fresh reader sees the original's."""
    storage = make_storage(_url(kind, tmp_path))  # what the worker holds (sqlite: its engine)
    s = optuna.create_study(storage=storage, study_name="served")
    s.enqueue_trial({"x": 1})
    s.enqueue_trial({"x": 1})
    original = s.ask(D)
    attrs = {k: {"key": k, "i": i, "xs": [i, i / 3, None]} for i, k in enumerate(_COPIED)}
    for k, v in {**attrs, TRAINS: True, "screen_score": 0.25}.items():  # the last two: not copied
        original.set_user_attr(k, v)
    original.set_constraint("c0", -0.5)
    s.tell(original, 0.75)
    served, src = s.ask(D), s.get_trials()[original.number]
    with _user_attr_writes(kind, storage) as writes:
        assert serve_duplicate(s, served, src) == TrialState.COMPLETE
    assert writes == ([len(attrs) + 1] if kind == "journal" else [1])  # one write (was 21)
    got = optuna.load_study(study_name="served", storage=_fresh_reader(kind, tmp_path)).trials
    assert got[served.number].user_attrs == {**attrs, "duplicate_of": original.number}
    assert served.user_attrs == got[served.number].user_attrs  # the live trial's copy too
    assert {k: got[original.number].user_attrs[k] for k in _COPIED} == attrs
    assert got[served.number].values == [0.75] and got[served.number].state == TrialState.COMPLETE
    assert got[served.number].constraints == {"c0": -0.5}


def _exclusive(studies: list[optuna.Study]) -> bool:
    """Whether the second study object's lock waits while the first one's is held: thread A
    holds it and waits up to 1 s for B to get in; True when B got in only after A left."""
    a_in, b_in, order = threading.Event(), threading.Event(), []

    def a() -> None:
        with study_lock(studies[0]):
            a_in.set()
            b_in.wait(1.0)
            order.append("a out")

    def b() -> None:
        a_in.wait(30)
        with study_lock(studies[1]):
            order.append("b in")
            b_in.set()

    threads = [threading.Thread(target=f) for f in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return order == ["a out", "b in"]


@pytest.mark.parametrize("kind", ["sqlite", "journal", "memory"])
def test_the_study_lock_admits_one_holder_at_a_time(tmp_path: Path, kind: str) -> None:
    assert _exclusive(list(_two(None if kind == "memory" else _url(kind, tmp_path))))


def test_the_study_lock_on_postgresql_is_the_study_rows_lock(pg_url: str) -> None:  # noqa: F811
    s1, s2 = _two(pg_url, "lock")
    assert _exclusive([s1, s2])
    other, _ = _two(pg_url, "other")  # another study's lock is another row: no wait
    with study_lock(s1), study_lock(other):
        pass
    t1, t2 = _same(s1, s2)
    assert claim(s1, t1) is None and claim(s2, t2) == t1.number


# ----------------------------------------------------------------------------- the worker loop
def _study(tmp_path: Path, n: int) -> Any:
    doc = {
        "name": "claims",
        "search_space": str(ROOT / "search_spaces" / "lth4sa_placement.yaml"),
        "model": {"name": "digits_resnet", "kwargs": {"adaptor": "se", "blocks": [3, 3, 3]}},
        "train": {"epochs": 1},
        "objectives": [{"metric": "val_accuracy", "direction": "maximize"}],
        "sampler": {"name": "random", "seed": 0},
        "budget": {"n_trials": n},
        "noise": {"trials": 0},
        "runs_dir": str(tmp_path / "runs"),
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    return load_study(tmp_path / "s.yaml")


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_handed_one_configuration_at_once_train_it_once(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker loops (threads, each its own study object, one storage) and a space of one
    configuration. The first training does not return before the other worker has decided —
    it trains too (the defect) or waits for this one — so the race happens every time."""
    cond, trained, waited = threading.Condition(), [], []

    def objective(study: Any, params: dict, report: Any, *, trial: Any = None, **_: Any) -> dict:
        with cond:
            trained.append(trial.number)
            cond.notify_all()
            decided = cond.wait_for(lambda: len(trained) + len(waited) >= 2, timeout=60)
        assert decided, "the other worker never reached its claim"
        report(1, {"val_accuracy": 0.9})
        return {"val_accuracy": 0.9, "epochs_run": 1.0}

    def progress(kind: str, info: dict) -> None:
        if kind == "waiting":
            with cond:
                waited.append(info["trial"])
                cond.notify_all()

    monkeypatch.setattr(backend, "sample", lambda t, space: {"x": t.suggest_categorical("x", [1])})
    monkeypatch.setattr(_replicates, "run_trial", objective)
    study, url = _study(tmp_path, 6), _url(kind, tmp_path)
    backend.open_study(study, url, backend.resolve_space(study))  # created once, then loaded
    ran: list[int] = []
    workers = [
        threading.Thread(
            target=lambda i=i: ran.append(
                backend.worker_loop(study, url, worker=i, threads=1, progress=progress)
            )
        )
        for i in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    s = optuna.load_study(study_name="claims", storage=make_storage(url))
    ts = [t for t in s.get_trials() if not t.user_attrs.get("odeattn_surplus")]
    assert len(trained) == 1, f"x=1 trained by trials {trained}"  # before: 2
    assert len(waited) == 1 and sum(ran) == 6  # every counted trial run by one of the two
    assert [t.state for t in ts] == [TrialState.COMPLETE] * 6 and budget_used(s) == 6
    fresh = [t.number for t in ts if "duplicate_of" not in t.user_attrs]
    assert fresh == trained and [t.number for t in ts if t.user_attrs.get(TRAINS)] == trained
    waiter = next(t for t in ts if "odeattn_waited_for" in t.user_attrs)
    assert waiter.user_attrs["odeattn_waited_for"] == trained[0]
    assert waiter.user_attrs["duplicate_of"] == trained[0] and waiter.values == [0.9]
