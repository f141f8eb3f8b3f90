"""The proxy screen both backends hand a trial (``search.trial.screen_for``; issue 20's D7: one
function where the optuna and Ray backends each had a copy): its kept/rejected decisions and the
``screen_*`` attributes it stores, against hand-computed ranks (``odeattn.proxies.Screen``:
kept iff rank ≤ max(1, ⌈keep_fraction·n_seen⌉), the first ``warmup_trials`` always kept)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from test_screen_proxies import _study

from odeattn.search.backends.optuna._report import screen_fn
from odeattn.search.backends.ray._study import _make_screen
from odeattn.search.storage import make_storage
from odeattn.search.trial import screen_for
from odeattn.study.config._load import load_study

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
SCREEN = {"metric": "tns", "direction": "maximize", "keep_fraction": 0.5, "warmup_trials": 2}


def _sqlite_study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(study_name="screen", storage=make_storage(_url(tmp_path)))


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/screen.db"


def _stored(tmp_path: Path, number: int) -> dict[str, Any]:
    """Trial ``number``'s ``screen_*`` attributes as a fresh reader of the SQLite file sees them."""
    again = optuna.load_study(study_name="screen", storage=make_storage(_url(tmp_path)))
    attrs = again.trials[number].user_attrs
    return {k.removeprefix("screen_"): v for k, v in attrs.items() if k.startswith("screen_")}


def test_screen_for_decides_by_hand_computed_rank_and_stores_the_decision(tmp_path: Path) -> None:
    study = load_study(_study(tmp_path, SCREEN))
    s = _sqlite_study(tmp_path)
    trial = s.ask()
    history: list[float] = [0.9]
    screen = screen_for(study, trial, lambda: history)
    assert screen is not None
    # 1 earlier score < warmup_trials=2: kept whatever its rank (rank 2 of 2, keep max(1, ⌈1⌉)=1)
    assert screen(0.0) is True
    want = {"score": 0.0, "rank": 2, "n_seen": 2, "n_keep": 1, "kept": True, "reason": "warm-up"}
    assert _stored(tmp_path, 0) == want
    history[:] = [0.1, math.nan, 0.4, 0.3]  # read at each decision; the NaN is not a score
    # 3 finite earlier scores: n_seen=4, n_keep=⌈0.5·4⌉=2; maximize: rank = 1 + #(better)
    assert screen(0.35) is True  # only 0.4 is better: rank 2 ≤ 2
    assert _stored(tmp_path, 0) == {
        **{"score": 0.35, "rank": 2, "n_seen": 4, "n_keep": 2, "kept": True},
        "reason": "rank 2 of 4 <= 2 kept",
    }
    assert screen(0.2) is False  # 0.4 and 0.3 are better: rank 3 > 2
    assert _stored(tmp_path, 0) == {
        **{"score": 0.2, "rank": 3, "n_seen": 4, "n_keep": 2, "kept": False},
        "reason": "rank 3 of 4 > 2 kept",
    }
    assert screen(math.nan) is False  # never kept; stored as None (JSON has no NaN)
    assert _stored(tmp_path, 0) == {
        **{"score": None, "rank": 4, "n_seen": 4, "n_keep": 2, "kept": False},
        "reason": "non-finite score",
    }
    assert trial.user_attrs["screen_reason"] == "non-finite score"  # the live trial's copy too


def test_screen_for_minimize_rejects_the_larger_score(tmp_path: Path) -> None:
    study = load_study(_study(tmp_path, {**SCREEN, "direction": "minimize", "warmup_trials": 0}))
    s = _sqlite_study(tmp_path)
    screen = screen_for(study, s.ask(), lambda: [1.0, 2.0, 3.0])  # n_seen=4, n_keep=2
    assert screen is not None
    assert screen(1.5) is True and _stored(tmp_path, 0)["rank"] == 2  # only 1.0 is better
    assert screen(2.5) is False and _stored(tmp_path, 0)["rank"] == 3


def _finished(s: optuna.Study, state: TrialState, score: float) -> None:
    t = s.ask()
    t.set_user_attr("screen_score", score)
    if state == TrialState.COMPLETE:
        s.tell(t, 1.0)
    elif state != TrialState.RUNNING:
        s.tell(t, state=state)


@pytest.mark.parametrize("backend", ["optuna", "ray"])
def test_both_backends_screen_against_complete_and_pruned_trials(
    tmp_path: Path, backend: str
) -> None:
    """The backends differ only in how they read earlier scores: both read the COMPLETE and
    PRUNED trials' ``screen_score`` (a FAIL or RUNNING trial's 0.99 would make 0.35 rank 3)."""
    study = load_study(_study(tmp_path, SCREEN))
    s = _sqlite_study(tmp_path)
    for state, score in [
        (TrialState.COMPLETE, 0.1),
        (TrialState.COMPLETE, 0.4),
        (TrialState.PRUNED, 0.3),
        (TrialState.FAIL, 0.99),
        (TrialState.RUNNING, 0.98),
    ]:
        _finished(s, state, score)
    trial = s.ask()
    screen = screen_fn(study, s, trial) if backend == "optuna" else _make_screen(study, trial)
    assert screen is not None
    assert screen(0.35) is True
    assert _stored(tmp_path, trial.number)["reason"] == "rank 2 of 4 <= 2 kept"
    assert screen(0.2) is False
    assert _stored(tmp_path, trial.number)["reason"] == "rank 3 of 4 > 2 kept"


def test_no_screen_is_none_on_both_backends(tmp_path: Path) -> None:
    study = load_study(_study(tmp_path, SCREEN)).model_copy(update={"screen": None})
    s = optuna.create_study()
    trial = s.ask()
    assert screen_for(study, trial, lambda: []) is None
    assert screen_fn(study, s, trial) is None and _make_screen(study, trial) is None
