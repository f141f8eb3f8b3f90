"""Issue 20: the database transactions of one trial of the worker loop, counted on real SQLite.

Every database call of odeattn's RDB storage goes through ``GuardedStorage._call`` (one session,
one transaction each), so a counting wrapper there sees each round trip. The worker loop runs a
real study (9 placement bits, a constraint, the ``dominated`` rule deciding at epoch 2) with an
objective that returns at once; the counts per trial are checked against what the stored study
says happened (trials trained, pruned, served as duplicates).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from odeattn.search.backends.optuna import _report
from odeattn.search.backends.optuna import _worker as backend
from odeattn.search.storage import budget_used, create_or_load
from odeattn.search.storage._guarded import GuardedStorage
from odeattn.search.trial import _replicates
from odeattn.study.config._load import load_study

ROOT = Path(__file__).resolve().parents[1]
optuna.logging.set_verbosity(optuna.logging.WARNING)
BITS = 9  # digits_resnet 3-3-3: one placement bit per block


def _study(tmp_path: Path, n: int) -> Any:
    doc = {
        "name": "trips",
        "search_space": str(ROOT / "search_spaces" / "lth4sa_placement.yaml"),
        "model": {"name": "digits_resnet", "kwargs": {"adaptor": "se", "blocks": [3, 3, 3]}},
        "train": {"epochs": 3},
        "objectives": [
            {"metric": "val_accuracy", "direction": "maximize"},
            {"metric": "attention_blocks", "direction": "minimize"},
        ],
        "constraints": [{"metric": "val_accuracy", "min": 0.6}],
        "sampler": {"name": "random", "seed": 0},
        "budget": {"n_trials": n},
        "noise": {"trials": 0},
        "pruning": {"rule": "dominated", "k": 1, "warmup_epochs": 1, "min_trials": 2},
        "runs_dir": str(tmp_path / "runs"),
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    return load_study(tmp_path / "s.yaml")


def _instant(study: Any, params: dict, report: Any, *, trial: Any = None, **_: Any) -> dict:
    """Three epochs (the rule decides at epoch 2: some trials are pruned there), at once."""
    bits = [int(v) for k, v in sorted(params.items()) if k.startswith("placement")]
    blocks = float(sum(bits))
    acc = 0.6 + 0.04 * (int("".join(map(str, bits)), 2) % 7)
    e = 0
    for e in range(1, 4):
        if report(e, {"val_accuracy": acc * e / 3, "attention_blocks": blocks}):
            break
    return {"val_accuracy": acc, "attention_blocks": blocks, "epochs_run": float(e)}


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Counter, optuna.Study]:
    """A 24-trial search on SQLite (tmpfs where there is one) with every database call counted
    by name; the counts and the study read back."""
    calls: Counter = Counter()
    call = GuardedStorage._call

    def counting(self: GuardedStorage, method: Any, args: tuple, kwargs: dict) -> Any:
        calls[method.__name__] += 1
        return call(self, method, args, kwargs)

    monkeypatch.setattr(GuardedStorage, "_call", counting)
    monkeypatch.setattr(_replicates, "run_trial", _instant)
    monkeypatch.setattr(_report, "LIVE_S", 1e9)  # however slow the machine: no live write
    study = _study(tmp_path, 12)
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else tmp_path) as d:
        url = f"sqlite:///{d}/s.db"
        # created as a launch creates it, so the sampler takes `sampler.seed` (a study created by
        # another process gets a pid-salted seed: its draws, and so their duplicates, would vary)
        create_or_load(url, "trips", study.directions)
        backend.worker_loop(study, url)
        got = Counter(calls)
        s = optuna.load_study(study_name="trips", storage=url)
        s.get_trials()  # read while the file exists
    return got, s


def _per_trial(s: optuna.Study) -> dict[str, int]:
    """The database calls the stored study says its trials made (every trial trained: none
    served as a duplicate, none surplus, checked here)."""
    ts = s.get_trials(deepcopy=False)
    assert not any("duplicate_of" in t.user_attrs for t in ts)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in ts)
    n = len(ts)
    epochs = sum(len(t.user_attrs["intermediate"]["val_accuracy"]) for t in ts)
    pruned = sum(t.state == TrialState.PRUNED for t in ts)
    assert 0 < pruned < n and epochs == 3 * n - pruned  # pruned at epoch 2
    return {
        "_create_new_trial": n,
        "get_trial": 2 * n,  # Optuna's: the new Trial (ask), the check that it is RUNNING (tell)
        "record_heartbeat": n,  # the first; then every 30 s from a thread
        "set_trial_user_attr": 2 * n,  # odeattn_pid, odeattn_trains
        "rdb_set_trial_params": n,  # the sampled params (9 placement bits)
        "set_trial_system_attr": n,  # the constraint
        # intermediate at epoch 2 (the rule decides: stored at once); the replicates'
        # attributes with intermediate of epoch 3 (kept since: no rule reads it while running)
        "rdb_set_user_attrs": 2 * n,
        "set_trial_state_values": n,  # tell
        # the ledger (budget, surplus, claim, the decision at epoch 2) and ask's queue; and
        # open_study's count, the last turn's budget check
        "_get_trials": 5 * n + 2,
    }


def test_each_trial_makes_the_database_calls_it_needs_and_no_more(
    counted: tuple[Counter, optuna.Study],
) -> None:
    """Before issue 20's second round a trained trial made 28 calls here (3 epochs): each param
    its own write (9), the constraint's write read the whole trial first, ``Study.tell`` read
    the told trial back to return a copy and ``intermediate`` was written at every epoch; now
    16 (or 17: 15 + 2 after the opening, 18 with an intermediate write per epoch), and what is
    stored in the end is the same (every epoch's values, checked in ``_per_trial``)."""
    calls, s = counted
    assert budget_used(s) == 12 and len(s.trials) == 12
    want = _per_trial(s)
    per_trial = {k: calls[k] for k in want}
    assert per_trial == want
    opening = {"create_new_study", "get_study_id_from_name", "get_study_directions"}
    opening |= {"get_study_user_attrs", "get_study_system_attrs", "set_study_system_attr"}
    assert set(calls) == set(want) | opening  # nothing else: no one-param write, no other read


def test_a_trial_that_fails_or_is_cut_short_stores_its_kept_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``intermediate`` of an epoch no rule reads waits for the trial's next write; a trial that
    raises after such an epoch is told FAIL with it stored (the tell writes what was kept)."""
    monkeypatch.setattr(_report, "LIVE_S", 1e9)

    def failing(study: Any, params: dict, report: Any, **_: Any) -> dict:
        report(1, {"val_accuracy": 0.5, "attention_blocks": 3.0})  # warm-up epoch: kept
        raise RuntimeError("diverged")

    monkeypatch.setattr(_replicates, "run_trial", failing)
    study = _study(tmp_path, 2)
    url = f"sqlite:///{tmp_path}/f.db"
    backend.worker_loop(study, url)
    ts = optuna.load_study(study_name="trips", storage=url).trials
    assert [t.state for t in ts] == [TrialState.FAIL] * 2
    for t in ts:
        assert t.user_attrs["intermediate"] == {"val_accuracy": [0.5], "attention_blocks": [3.0]}
        assert t.user_attrs["error"] == "RuntimeError: diverged"
