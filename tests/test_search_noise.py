"""Issue 18 point 4: the noise ceiling runs through the backend, before budget.timeout, sized by the
study: the exact fresh seeds, N retrains at once with ``--workers N``, k of m under a timeout,
finished retrains stored at once and completed by the next run."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from scipy.stats import kendalltau

from odeattn.search.__main__ import main
from odeattn.search._retrains import run_local
from odeattn.search.results import fresh_seeds, noise_lines, planned_retrains
from odeattn.search.results._noise import SMALL_DATA
from odeattn.search.trial import Deadline, Retrain, _deadline, _replicates
from odeattn.study import plan_for, replicate_seeds
from odeattn.study.config._load import load_study

ROOT = Path(__file__).resolve().parents[1]
SPACE = str(ROOT / "search_spaces" / "lth4sa_placement.yaml")
OFFSET = 100_003
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _write(tmp_path: Path, **over: Any) -> Path:
    doc = {
        "name": "nc",
        "search_space": SPACE,
        "model": {"name": "digits_resnet", "kwargs": {"adaptor": "se", "blocks": [3, 3, 3]}},
        "train": {"epochs": 3},
        "objectives": [
            {"metric": "val_accuracy", "direction": "maximize"},
            {"metric": "attention_blocks", "direction": "minimize"},
        ],
        "sampler": {"name": "random", "seed": 0},
        "budget": {"n_trials": 4},
        "runs_dir": str(tmp_path / "runs"),
        **over,
    }
    path = tmp_path / "nc.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _acc(seed: int) -> float:
    return 0.5 + 0.01 * (seed % 7) + 0.001 * (seed % 5)  # the seed decides: replicates differ


def _fake(calls: list, clock: list | None = None) -> Any:
    """``run_trial`` of 3 epochs that records (params, seed) and takes 10 s of ``clock``."""

    def run_trial(study, params, report, *, trial=None, space=None, screen=None, seed=None):
        calls.append((dict(params), seed))
        if clock is not None:
            clock[0] += 10.0
        for e in range(1, 4):
            if report is not None and report(e, {"val_accuracy": _acc(seed)}):
                break
        if trial is not None:
            trial.set_user_attr("architecture", {"name": "digits_resnet", "placement": "1"})
        out = {"val_accuracy": _acc(seed), "attention_blocks": 2.0, "epochs_run": 3.0}
        return out | {"seconds": 10.0}

    return run_trial


@pytest.mark.parametrize("data", SMALL_DATA)
def test_auto_noise_trials_follow_the_plan(tmp_path: Path, data: str) -> None:
    small = load_study(_write(tmp_path, data={"name": data}))
    assert small.noise.trials == "auto" and planned_retrains(small) == 6
    long = load_study(_write(tmp_path, data={"name": data}, train={"epochs": 51}, replicates=2))
    assert plan_for(long).epochs * 2 == 102 and planned_retrains(long) == 0  # > 100 epochs
    cifar = load_study(ROOT / "studies/cifar10_stepnet.yaml", noise={"trials": "auto"})
    assert planned_retrains(cifar) == 0  # 164 epochs of CIFAR-10 per retrain: off
    assert planned_retrains(load_study(_write(tmp_path, noise={"trials": 4}))) == 4


@pytest.mark.parametrize(
    ("name", "trials"),
    [("cifar10_stepnet", 6), ("cifar100_lth4sa", 6), ("evidence_paper", 6)],
)
def test_paper_scale_studies_set_the_ceiling_explicitly(name: str, trials: int) -> None:
    text = (ROOT / "studies" / f"{name}.yaml").read_text()
    assert load_study(ROOT / "studies" / f"{name}.yaml").noise.trials == trials
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("noise:"))
    assert lines[i - 2].startswith("# noise ceiling, set explicitly")  # with its reason


def test_retrains_get_the_fresh_seeds_of_the_plan(tmp_path: Path, monkeypatch, capsys) -> None:
    calls: list = []
    monkeypatch.setattr(_replicates, "run_trial", _fake(calls))
    path = _write(tmp_path, replicates=2, noise={"trials": 3})
    assert main([str(path)]) == 0
    study = load_study(path)
    s = optuna.load_study(study_name="nc", storage=f"sqlite:///{tmp_path}/runs/nc/study.db")
    c = s.user_attrs["noise_ceiling"]
    ranked = sorted(s.trials, key=lambda t: t.values[0])
    assert c["trials"] == [ranked[0].number, ranked[2].number, ranked[3].number]  # spread evenly
    retrains = calls[8:]  # 4 trials × 2 replicates first
    assert len(retrains) == 6
    for k, n in enumerate(c["trials"]):
        want = [n + OFFSET, n + OFFSET + 1_000_003]  # plan seed of trial n + offset, replicates
        assert want == replicate_seeds(n + OFFSET, 2) == fresh_seeds(study, n)
        assert [sd for _, sd in retrains[2 * k : 2 * k + 2]] == want
        assert all(p == s.trials[n].params for p, _ in retrains[2 * k : 2 * k + 2])
        assert c["fresh"][k] == pytest.approx(np.mean([_acc(sd) for sd in want]))
        assert c["stored"][k] == s.trials[n].values[0]
    assert c["tau"] == pytest.approx(kendalltau(c["stored"], c["fresh"]).statistic)
    assert (c["planned"], c["ran"]) == (3, 3)
    assert "noise ceiling of val_accuracy" in capsys.readouterr().out


def test_a_timeout_that_fits_k_of_m_retrains_runs_k_and_says_so(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    calls: list = []
    monkeypatch.setattr(_replicates, "run_trial", _fake(calls))
    assert main([str(_write(tmp_path, noise={"trials": 0})), "--quiet"]) == 0  # the search
    clock = [1000.0]  # each retrain takes 10 s of this clock; its trial trained 10 s
    monkeypatch.setattr(_deadline, "clock", lambda: clock[0])
    monkeypatch.setattr(_replicates, "run_trial", _fake(calls, clock))
    path = _write(tmp_path, noise={"trials": 3})
    capsys.readouterr()
    assert main([str(path), "--timeout", "25"]) == 0  # T = 1025: retrains at 1000, 1010 fit
    out = capsys.readouterr().out
    assert len(calls) == 4 + 2 and clock[0] == 1020.0  # the third (1020 + 10 > 1025) not started
    url = f"sqlite:///{tmp_path}/runs/nc/study.db"
    s = optuna.load_study(study_name="nc", storage=url)
    c = s.user_attrs["noise_ceiling"]
    assert (c["planned"], c["ran"], len(s.user_attrs["noise_retrains"])) == (3, 2, 2)
    assert "noise ceiling: 2 of 3 planned retrains ran" in out  # the summary says k of m
    lines = noise_lines(load_study(path), s)
    assert "noise ceiling: 2 of 3 planned retrains ran; 1 not run before budget.timeout" in lines[1]
    assert "n = 2: needs n ≥ 3" in lines[0] and "does NOT repeat" not in "".join(lines)
    monkeypatch.setattr(_deadline, "clock", time.time)
    assert main([str(path), "--quiet"]) == 0  # completes it: only the missing retrain runs
    assert len(calls) == 4 + 3
    c = optuna.load_study(study_name="nc", storage=url).user_attrs["noise_ceiling"]
    assert (c["planned"], c["ran"]) == (3, 3) and calls[-1][1] not in [sd for _, sd in calls[4:6]]


def test_the_ceiling_is_measured_again_only_when_more_trials_finished(
    tmp_path: Path, monkeypatch
) -> None:
    calls: list = []
    monkeypatch.setattr(_replicates, "run_trial", _fake(calls))
    path = _write(tmp_path, noise={"trials": 3}, budget={"n_trials": 3})
    assert main([str(path), "--quiet"]) == 0 and len(calls) == 3 + 3
    assert main([str(path), "--quiet"]) == 0 and len(calls) == 6  # nothing new: not measured
    path = _write(tmp_path, noise={"trials": 3}, budget={"n_trials": 5})
    assert main([str(path), "--quiet"]) == 0
    url = f"sqlite:///{tmp_path}/runs/nc/study.db"
    c = optuna.load_study(study_name="nc", storage=url).user_attrs["noise_ceiling"]
    assert c["finished"] == 5 and c["ran"] == 3
    stored = {sd for _, sd in calls[3:6]}  # earlier retrains of trials picked again are reused
    again = [sd for _, sd in calls[8:]]
    assert len(again) == 3 - len({n + OFFSET for n in c["trials"]} & stored)
    assert not set(again) & stored


def job_with_barrier(study: Any, job: Retrain, deadline: Deadline) -> dict[str, Any]:
    """A retrain that records its process and waits for retrain 0 and 1 to run at once."""
    box = Path(os.environ["NOISE_TEST_DIR"])
    t0 = time.time()
    (box / f"start-{job.number}").write_text(str(os.getpid()))
    if job.number < 2:
        while not all((box / f"start-{k}").exists() for k in (0, 1)):
            if time.time() - t0 > 120:
                return {"error": "retrains 0 and 1 did not run at the same time"}
            time.sleep(0.05)
    return {"value": float(job.number) + (deadline.at or 0.0), "pid": os.getpid()}


def test_with_workers_2_two_retrains_run_at_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NOISE_TEST_DIR", str(tmp_path))  # the spawned processes inherit it
    study = load_study(_write(tmp_path, workers=2))
    jobs = [Retrain(n, {"x": n}, (n + OFFSET,), 1.0) for n in range(4)]
    got: dict[int, dict] = {}
    run_local(
        study, jobs, Deadline(7.0e9), lambda j, o: got.update({j.number: o}), job=job_with_barrier
    )
    assert sorted(got) == [0, 1, 2, 3]
    assert all(got[n]["value"] == n + 7.0e9 for n in got)  # each job with its deadline
    pids = {got[n]["pid"] for n in got}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes, not this one
