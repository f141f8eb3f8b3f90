"""Issue 20: two processes recovering the same stale trial at the same moment re-queue it once.

Each study holds trials left RUNNING by a process that has exited (its pid tag names a dead pid on
this host). ``PROCS`` real processes (``multiprocessing``, spawn) open the storage, meet at a
barrier and call ``recover_stale`` on the same study at the same instant, study after study. Read
back with Optuna's API: every stale trial is FAIL and labelled once, its architecture is queued
exactly once, and exactly one process reports it.
"""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

pytestmark = pytest.mark.slow
PROCS, STUDIES, STALE = 4, 6, 2


def _dead_tag() -> str:
    from odeattn.search.storage._storage import process_tag

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return process_tag(p.pid).rsplit(":", 1)[0] + ":0"  # a pid that has exited


def _prepare(url: str) -> None:
    from odeattn.search.storage import make_storage

    storage, dead = make_storage(url), _dead_tag()
    for k in range(STUDIES):
        s = optuna.create_study(study_name=f"race{k}", storage=storage)
        for a in range(STALE):
            t = s.ask()
            t.suggest_int("a", a, a)  # one architecture per trial: a = its index
            t.set_user_attr("odeattn_pid", dead)


def _recover(url: str, barrier: Any, out: Any) -> None:
    """A process that recovers every study, in step with the others (the barrier)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from odeattn.search.storage import make_storage, recover_stale

    try:
        storage = make_storage(url)
        studies = [
            optuna.load_study(study_name=f"race{k}", storage=storage) for k in range(STUDIES)
        ]
        got = []
        for s in studies:
            barrier.wait(timeout=120)
            got.append((s.study_name, recover_stale(s)))
        out.put(got)
    except BaseException as e:  # say what went wrong, and release the others at once
        barrier.abort()
        out.put(f"{type(e).__name__}: {e}")


def _race(url: str) -> list[tuple[str, list[int]]]:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(PROCS), ctx.Queue()
    procs = [ctx.Process(target=_recover, args=(url, barrier, out)) for _ in range(PROCS)]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=300) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    errors = [r for r in results if isinstance(r, str)]
    assert not errors, errors
    return [r for res in results for r in res]


def _check(url: str, got: list[tuple[str, list[int]]]) -> None:
    from odeattn.search.storage import make_storage

    reported = Counter((name, n) for name, ns in got for n in ns)
    storage = make_storage(url)
    for k in range(STUDIES):
        name = f"race{k}"
        ts = optuna.load_study(study_name=name, storage=storage).get_trials()
        stale = ts[:STALE]
        assert all(t.state == TrialState.FAIL and t.user_attrs["odeattn_stale"] for t in stale)
        queued = [t for t in ts if t.state == TrialState.WAITING]
        by_origin = Counter(t.user_attrs["odeattn_retry_of"] for t in queued)
        assert by_origin == Counter(range(STALE)), (name, by_origin)  # each architecture once
        assert sorted(t.system_attrs["fixed_params"]["a"] for t in queued) == list(range(STALE))
        assert all(reported[(name, n)] == 1 for n in range(STALE)), (name, reported)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_concurrent_recovery_requeues_each_stale_trial_once(tmp_path: Path, kind: str) -> None:
    url = f"sqlite:///{tmp_path}/study.db" if kind == "sqlite" else str(tmp_path / "journal.log")
    _prepare(url)
    _check(url, _race(url))


@pytest.mark.postgres
def test_concurrent_recovery_on_postgres_requeues_each_stale_trial_once(pg_url: str) -> None:
    _prepare(pg_url)
    _check(pg_url, _race(pg_url))
