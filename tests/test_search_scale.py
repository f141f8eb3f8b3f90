"""Issue 20, the search at scale: the worker loop's bookkeeping is incremental and gives the same
answers as the full scans it replaced; the front and the plots of a large study stay cheap.

The full scans below are the code the ledger replaced, kept here as the reference.
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from odeattn.search.backends.optuna import _worker as backend
from odeattn.search.backends.optuna._duplicate import find_duplicate
from odeattn.search.backends.optuna._ledger import Ledger, ledger
from odeattn.search.backends.optuna._prune import decide
from odeattn.search.results import dominates, n_dominating, pareto
from odeattn.search.results._plots import LABELS, _labelled
from odeattn.search.storage import budget_used, counts
from odeattn.search.trial import _replicates
from odeattn.study.config._load import load_study

ROOT = Path(__file__).resolve().parents[1]
optuna.logging.set_verbosity(optuna.logging.WARNING)
MAX, MIN = "maximize", "minimize"
DIST = {"x": CategoricalDistribution(list(range(6))), "y": CategoricalDistribution(["a", "b"])}
KEYS = ["val_accuracy", "attention_blocks"]


# ----------------------------------------------------------------------------- the full scans
def _all(s: optuna.Study | list[FrozenTrial]) -> list[FrozenTrial]:
    return s if isinstance(s, list) else s.get_trials(deepcopy=False)


def scan_surplus(s: optuna.Study | list, number: int, n: int) -> bool:
    return sum(t.number <= number and counts(t) for t in _all(s)) > n


def scan_duplicate(s: optuna.Study | list, params: dict, number: int) -> FrozenTrial | None:
    done = (TrialState.COMPLETE, TrialState.PRUNED)
    for t in _all(s):
        if t.state in done and t.number != number and t.params == params:
            return t
    return None


def _at(hist: dict, key: str, epoch: int) -> float | None:
    vals = hist.get(key) or []
    v = vals[epoch - 1] if len(vals) >= epoch else None
    return float(v) if v is not None and math.isfinite(v) else None


def scan_reference(s: optuna.Study | list, keys: list[str], epoch: int, number: int) -> list:
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    out = []
    for t in (t for t in _all(s) if t.state in states):
        row = [_at(t.user_attrs.get("intermediate") or {}, k, epoch) for k in keys]
        if t.number != number and all(v is not None for v in row):
            out.append(row)
    return sorted(out)


def _num(t: FrozenTrial | None) -> int | None:
    return None if t is None else t.number


def scan_scores(s: optuna.Study | list) -> list[float]:
    ts = [t for t in _all(s) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    return sorted(float(t.user_attrs["screen_score"]) for t in ts if "screen_score" in t.user_attrs)


# ----------------------------------------------------------------------------- a constructed study
def _attrs(rng: np.random.Generator, epochs: int) -> dict[str, Any]:
    inter = {k: [float(v) for v in rng.random(epochs)] for k in KEYS}
    if rng.random() < 0.2:
        inter["val_accuracy"][-1] = math.nan  # a non-finite value: left out of the reference
    out: dict[str, Any] = {"intermediate": inter}
    if rng.random() < 0.5:
        out["screen_score"] = float(rng.random())
    fail = rng.choice(["", "odeattn_stale", "odeattn_surplus", "odeattn_setup"])
    return out | ({fail: True} if fail else {})


def _add(s: optuna.Study, rng: np.random.Generator, state: TrialState) -> None:
    params = {"x": int(rng.integers(0, 6)), "y": str(rng.choice(["a", "b"]))}
    attrs = _attrs(rng, int(rng.integers(1, 4)))
    if state != TrialState.FAIL:
        attrs = {k: v for k, v in attrs.items() if not k.startswith("odeattn")}
    values = [float(rng.random()), float(rng.integers(0, 9))]
    s.add_trial(
        create_trial(
            state=state,
            values=values if state == TrialState.COMPLETE else None,
            params=params,
            distributions=DIST,
            user_attrs=attrs,
        )
    )


def _running(s: optuna.Study, rng: np.random.Generator) -> optuna.Trial:
    t = s.ask()
    t.suggest_categorical("x", list(range(6)))
    t.suggest_categorical("y", ["a", "b"])
    t.set_user_attr("intermediate", _attrs(rng, 2)["intermediate"])
    return t


def _grow(s: optuna.Study, rng: np.random.Generator, n: int) -> list[optuna.Trial]:
    running = []
    for _ in range(n):
        pick = rng.random()
        if pick < 0.1:
            running.append(_running(s, rng))
        elif pick < 0.15:
            s.enqueue_trial({"x": 1, "y": "a"})  # WAITING: neither counted nor a reference
        else:
            state = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL][int(rng.integers(3))]
            _add(s, rng, state)
    return running


def _check(s: optuna.Study, led: Ledger) -> None:
    assert led.budget_used() == budget_used(s)
    ts = s.get_trials(deepcopy=False)  # the study does not change during the check
    for t in ts:
        for n in (0, 5, 17, 40):
            assert (led.counted_up_to(t.number) > n) == scan_surplus(ts, t.number, n)
        dup = scan_duplicate(ts, t.params, t.number)
        assert _num(led.duplicate(t.params, t.number)) == _num(dup)
        for epoch in (1, 2, 3):
            got = sorted(map(list, led.reference(KEYS, epoch, t.number)))
            assert got == scan_reference(ts, KEYS, epoch, t.number)
    assert sorted(led.screen_scores()) == scan_scores(ts)


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """In memory (the ledger reads Optuna's list of every trial) and an RDB storage (it reads
    only new and unfinished trials from Optuna's cache: ``storage.changed_trials``)."""
    if request.param == "memory":
        yield None
        return
    shm = Path("/dev/shm")  # tmpfs where there is one: commits without the disk's fsync
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else tmp_path) as d:
        yield f"sqlite:///{d}/l.db"


def test_the_ledger_gives_the_answers_of_the_full_scans_as_the_study_grows(storage: Any) -> None:
    rng = np.random.default_rng(20)
    s = optuna.create_study(directions=[MAX, MIN], storage=storage)
    led = ledger(s)
    running = _grow(s, rng, 60)
    _check(s, led)
    for i, t in enumerate(running):  # the unfinished ones finish, in any order, as others start
        if i % 2:
            s.tell(t, [0.5, 1.0])
        else:
            t.set_user_attr("odeattn_stale", True)
            s.tell(t, state=TrialState.FAIL)
    running = _grow(s, rng, 60)
    _check(s, led)
    s.tell(running[0], state=TrialState.PRUNED)
    _check(s, led)
    assert ledger(s) is led  # one ledger per study object
    gone = weakref.ref(s)
    del s, led, running, t
    gc.collect()
    assert gone() is None  # the ledger holds no strong reference to its study


def test_find_duplicate_and_surplus_through_the_worker_functions() -> None:
    rng = np.random.default_rng(3)
    s = optuna.create_study(directions=[MAX, MIN])
    _grow(s, rng, 40)
    t = _running(s, rng)
    assert _num(find_duplicate(s, t)) == _num(scan_duplicate(s, t.params, t.number))
    for n in range(0, 45, 4):
        assert backend._surplus(s, t, n) == scan_surplus(s, t.number, n)


# ----------------------------------------------------------------------------- fewer reads
def _study(tmp_path: Path, n: int, **over: Any) -> Any:
    doc = {
        "name": "scale",
        "search_space": str(ROOT / "search_spaces" / "lth4sa_placement.yaml"),
        "model": {"name": "digits_resnet", "kwargs": {"adaptor": "se", "blocks": [3, 3, 3]}},
        "train": {"epochs": 3},
        "objectives": [{"metric": k, "direction": d} for k, d in zip(KEYS, (MAX, MIN))],
        "sampler": {"name": "random", "seed": 0},
        "budget": {"n_trials": n},
        "noise": {"trials": 0},
        "pruning": {"rule": "dominated", "k": 1, "warmup_epochs": 1, "min_trials": 2},
        "runs_dir": str(tmp_path / "runs"),
        **over,
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    return load_study(tmp_path / "s.yaml")


def _instant(study: Any, params: dict, report: Any, *, trial: Any = None, **_: Any) -> dict:
    blocks = float(sum(v for k, v in params.items() if k.startswith("placement")))
    acc = 0.5 + 0.05 * blocks
    e = 0
    for e in range(1, 4):
        if report is not None and report(
            e, {"val_accuracy": acc * e / 3, "attention_blocks": blocks}
        ):
            break
    return {"val_accuracy": acc, "attention_blocks": blocks, "epochs_run": float(e)}


def test_the_worker_loop_looks_at_each_trial_a_bounded_number_of_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old loop called ``counts`` for every trial at every turn (O(N²) over a study) and had
    Optuna build the list of every trial ~6 times a turn; the ledger folds each finished trial in
    once and, on an RDB storage, reads only new and unfinished trials, 4 times a turn (budget,
    surplus, the claim of the configuration — under the study's lock, the duplicate lookup uses
    that read — and the one pruning decision, at epoch 2)."""
    from odeattn.search.backends.optuna import _ledger

    n = 30
    study = _study(tmp_path, n)
    calls = {"counts": 0, "lists": 0, "changed": 0}

    def counting(name: str, fn: Any) -> Any:
        return lambda *a, **k: calls.__setitem__(name, calls[name] + 1) or fn(*a, **k)

    monkeypatch.setattr(_ledger, "counts", counting("counts", counts))
    monkeypatch.setattr(_ledger, "changed_trials", counting("changed", _ledger.changed_trials))
    monkeypatch.setattr(optuna.Study, "get_trials", counting("lists", optuna.Study.get_trials))
    monkeypatch.setattr(_replicates, "run_trial", _instant)
    shm = Path("/dev/shm")  # tmpfs where there is one: commits without the disk's fsync
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else tmp_path) as d:
        url = f"sqlite:///{d}/s.db"
        backend.worker_loop(study, url)
        got = dict(calls)
        s = optuna.load_study(study_name="scale", storage=url)
    assert budget_used(s) == n and len(s.trials) == n
    assert got["counts"] <= 4 * n  # each trial once when finished, a few times while running
    assert got["lists"] <= 1  # open_study's count only: never the list of every trial per turn
    assert 3 * n <= got["changed"] <= 4 * n + 1


def test_decide_reads_nothing_at_an_epoch_no_rule_decides(tmp_path: Path, monkeypatch) -> None:
    study = _study(tmp_path, 3)
    s = optuna.create_study(directions=[MAX, MIN])
    monkeypatch.setattr(optuna.Study, "get_trials", lambda *a, **k: pytest.fail("read"))
    assert not decide(study, s, 0, {"val_accuracy": [0.1], "attention_blocks": [9]}, 1)  # warm-up
    seen = {"val_accuracy": [0.1, 0.1, 0.1], "attention_blocks": [9, 9, 9]}
    assert not decide(study, s, 0, seen, 3)  # the last epoch


# ----------------------------------------------------------------------------- the front, the plots
@pytest.mark.parametrize("directions", [[MAX], [MAX, MIN], [MIN, MAX, MIN]])
def test_pareto_and_n_dominating_equal_the_pairwise_definition(directions: list[str]) -> None:
    rng = np.random.default_rng(len(directions))
    pts = rng.integers(0, 6, (300, len(directions))).astype(float)  # many ties
    done = [(i, list(p)) for i, p in enumerate(pts)]
    want = [(t, v) for t, v in done if not any(dominates(w, v, directions) for _, w in done)]
    assert pareto(done, directions) == want
    for p in pts[:40]:
        assert n_dominating(p, pts, directions) == sum(dominates(o, p, directions) for o in pts)
    assert pareto([], directions) == []


def test_a_large_study_labels_only_its_front_points() -> None:
    small = [(type("T", (), {"number": i})(), [0.0]) for i in range(5)]
    assert _labelled(small, {0}) == {0, 1, 2, 3, 4}
    big = [(type("T", (), {"number": i})(), [0.0]) for i in range(1000)]
    front = set(range(0, 1000, 5))
    got = _labelled(big, front)
    assert len(got) == LABELS and got <= front and min(got) == 0


def test_the_summary_files_reuse_the_tables_noise_lines(tmp_path: Path, monkeypatch) -> None:
    """Each noise line is a bootstrap CI (seconds at 10,000 trials): computed once per summary."""
    from odeattn.search.results import _summary, summary_table, write_summary

    study = _study(tmp_path, 3)
    s = optuna.create_study(directions=[MAX, MIN])
    for i in range(6):
        s.add_trial(
            create_trial(values=[0.5 + 0.01 * i, float(i % 3)], user_attrs={"epochs_run": 3})
        )
    table = summary_table(study, s)
    monkeypatch.setattr(_summary, "noise_lines", lambda *a: pytest.fail("computed again"))
    js = next(p for p in write_summary(study, s, table) if p.suffix == ".json")
    lines = json.loads(js.read_text())["lines"]
    assert lines == table.noise_lines and any("Kendall" in line for line in lines)


# ----------------------------------------------------------------------------- a 1,000-trial cell
@pytest.mark.slow
def test_a_thousand_trial_cell_on_sqlite_spends_the_exact_budget(tmp_path: Path) -> None:
    out = tmp_path / "cell.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--trials", "1000"]
    cmd += ["--workers", "2", "--storage", "sqlite", "--sampler", "random", "--no-dashboard"]
    cmd += ["--timeout", "1500", "--out", str(out)]  # the files on tmpfs where there is one
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ODEATTN_THREADS": "1"}
    got = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    assert got.returncode == 0, got.stderr[-3000:]
    cell = json.loads(out.read_text())
    back = cell["read_back"]
    assert not cell["timed_out"] and cell["exit_codes"] == [0, 0]
    assert back["budget_used"] == 1000 and back["budget_exact"]
    assert back["states"]["RUNNING"] == 0 and back["states"]["WAITING"] == 0
    assert back["trials_stored"] == 1000 + back["surplus"] and back["surplus"] <= 2
    assert back["numbers_contiguous"] and back["states"]["FAIL"] == back["surplus"]
    assert back["trained_more_than_once"] == 0 and back["fail_not_surplus"] == 0
    assert cell["timed_trials"] == 1000  # every counted trial timed once: none lost or doubled
    assert not cell["results_s"]["timed_out"] and cell["results_s"]["exit_code"] == 0


# ----------------------------------------------------------------------------- the sampler's window
def _finished(s: optuna.Study, rng: np.random.Generator, n: int) -> None:
    for _ in range(n):
        params = {"x": int(rng.integers(0, 6)), "y": str(rng.choice(["a", "b"]))}
        values = [float(rng.random()), float(rng.integers(0, 9))]
        s.add_trial(create_trial(values=values, params=params, distributions=DIST))


def _copies(s: optuna.Study, trials: list[FrozenTrial]) -> optuna.Study:
    for t in trials:
        s.add_trial(create_trial(values=t.values, params=t.params, distributions=DIST))
    s.ask(DIST)  # and one running trial
    return s


def test_a_windowed_tpe_proposes_what_tpe_on_the_recent_trials_alone_proposes() -> None:
    from odeattn.search.backends.optuna._sampler import RecentTrials

    base = optuna.create_study(directions=[MAX, MIN])
    _finished(base, np.random.default_rng(7), 50)
    for seed in range(3):
        full = _copies(optuna.create_study(directions=[MAX, MIN]), base.trials)
        recent = _copies(optuna.create_study(directions=[MAX, MIN]), base.trials[20:])
        full.sampler = RecentTrials(optuna.samplers.TPESampler(seed=seed), 30)
        recent.sampler = optuna.samplers.TPESampler(seed=seed)
        view = full.sampler._view(full)._get_trials(deepcopy=False)
        assert [t.number for t in view] == list(range(20, 51))  # 30 finished, 1 running
        assert full.ask(DIST).params == recent.ask(DIST).params


@pytest.mark.parametrize(
    "sampler, ok",
    [
        ({"name": "tpe", "history": 500}, True),
        ({"name": "gp", "history": 50}, True),
        ({"name": "nsga2", "history": 500}, False),
        ({"name": "random", "history": 500}, False),
        ({"name": "tpe", "history": 10}, False),  # not above n_startup_trials
        ({"name": "tpe", "history": 50, "kwargs": {"n_startup_trials": 60}}, False),
    ],
)
def test_sampler_history_is_validated(tmp_path: Path, sampler: dict, ok: bool) -> None:
    from odeattn.search.backends.optuna._sampler import RecentTrials, make_sampler
    from odeattn.study import ConfigError, resolve_space

    if not ok:
        with pytest.raises(ConfigError, match=r"sampler\.history: .*must"):
            _study(tmp_path, 3, sampler=sampler)
        return
    study = _study(tmp_path, 3, sampler=sampler)
    made = make_sampler(study, resolve_space(study), 0)
    assert isinstance(made, RecentTrials) and made.history == sampler["history"]
