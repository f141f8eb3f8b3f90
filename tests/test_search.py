"""Search core, in process: sampling/decoding, the pruning rule against Optuna's own pruner,
budget and resume bookkeeping, multi-objective pruning, budget across invocations, export, and one
real trial whose measurements are checked against independent computations."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState, create_trial

from odeattn.models import format_placement
from odeattn.search import Space, budget_used, decode, resolve_space, run_trial, sample
from odeattn.search.__main__ import main
from odeattn.search.backends.optuna import _worker as backend
from odeattn.search.backends.optuna._prune import percentile_rule
from odeattn.search.storage._storage import make_storage, process_tag, recover_stale
from odeattn.search.trial import _replicates
from odeattn.study import grid_space, sampler_class
from odeattn.study.config._load import load_study
from odeattn.study.config._space import SearchSpaceConfig

ROOT = Path(__file__).resolve().parents[1]
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space(params: dict[str, Any], blocks: tuple[int, ...] = (3, 3, 3)) -> Space:
    return Space(SearchSpaceConfig.model_validate({"params": params}), blocks)


# ----------------------------------------------------------------------------- sampling
@pytest.mark.parametrize(
    "study_file", ["lth4sa", "tns_proxy", "stepnet_adaptors", "rk_stages", "rkcnn_digits"]
)
def test_sample_then_decode_round_trip(study_file: str) -> None:
    study = load_study(ROOT / "studies" / f"{study_file}.yaml")
    space = resolve_space(study)
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(8):
        t = s.ask()
        flat = sample(t, space)
        assert flat == t.params  # exactly what the trial holds: Ray hands this back as config
        d = decode(space, flat)
        if "placement" in d.values:
            groups = d.values["placement"]  # structured: one tuple of bools per stage
            blocks = d.model.get("blocks", space.blocks)
            assert [len(g) for g in groups] == list(blocks)
        s.tell(t, 0.0)


def test_bits_placement_is_the_bits() -> None:
    space = _space({"placement": {"type": "placement"}}, (2, 3))
    bits = {
        "placement.s0.b0": 1,
        "placement.s0.b1": 0,
        "placement.s1.b0": 0,
        "placement.s1.b1": 1,
        "placement.s1.b2": 1,
    }
    assert decode(space, bits).model == {"placement": [(True, False), (False, True, True)]}


def test_k_of_l_puts_attention_on_the_k_highest_priorities() -> None:
    space = _space({"p": {"type": "placement", "mode": "k_of_l", "k": [1, 4]}}, (2, 3))
    prio = [0.1, 0.9, 0.5, 0.95, 0.2]
    for k in range(1, 5):
        params = {"p.k": k, **{f"p.r{i}": v for i, v in enumerate(prio)}}
        mask = format_placement(decode(space, params).model["p"])
        top = sorted(range(5), key=lambda i: -prio[i])[:k]  # brute force
        flat = "".join("1" if i in top else "0" for i in range(5))
        assert mask == flat[:2] + "|" + flat[2:]
        assert mask.count("1") == k


def test_density_places_round_d_n_blocks_evenly() -> None:
    space = _space({"p": {"type": "placement", "mode": "density"}}, (3, 4, 18))
    got = format_placement(decode(space, {"p.s0": 0.5, "p.s1": 0.5, "p.s2": 0.25}).model["p"])
    # round(1.5)=2 of 3 at floor((j+.5)*3/2) = 0, 2; 2 of 4 at 1, 3; round(4.5)=4 of 18 at 2, 6, 11, 15
    assert got == "101|0101|" + "".join("1" if b in (2, 6, 11, 15) else "0" for b in range(18))


def test_conditional_parameters_exist_only_when_their_condition_holds() -> None:
    space = resolve_space(load_study(ROOT / "studies" / "stepnet_adaptors.yaml"))
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(40):
        t = s.ask()
        flat = sample(t, space)
        seen.add(flat["processor"])
        assert ("reduction" in flat) == (flat["processor"] == "fc")
        assert ("kernel_size" in flat) == (flat["processor"] == "eca")
        d = decode(space, flat)
        assert d.adaptor["processor"] == flat["processor"]  # fields land in the adaptor spec
        s.tell(t, 0.0)
    assert seen == {"fc", "eca", "cfc", "ie"}


def test_per_stage_blocks_drive_placement_length() -> None:
    space = _space(
        {"pl": {"type": "placement"}, "blocks": {"type": "per_stage", "low": 1, "high": 3}}
    )
    assert space.order == ["blocks", "pl"]  # blocks first, whatever the file order
    params = {
        "blocks.s0": 1,
        "blocks.s1": 3,
        "blocks.s2": 2,
        "pl.s0.b0": 1,
        "pl.s1.b0": 0,
        "pl.s1.b1": 1,
        "pl.s1.b2": 1,
        "pl.s2.b0": 0,
        "pl.s2.b1": 0,
    }
    d = decode(space, params)
    assert d.model["blocks"] == [1, 3, 2] and format_placement(d.model["pl"]) == "1|011|00"


# ----------------------------------------------------------------------------- pruning rule
def test_percentile_rule_equals_optunas_percentile_pruner() -> None:
    """Single-objective studies, where Optuna's pruner is defined: same decision on random cases."""
    rng = np.random.default_rng(0)
    for case in range(60):
        direction = ["maximize", "minimize"][case % 2]
        pct, warm, nmin = (
            float(rng.choice([25.0, 50.0, 75.0])),
            int(rng.integers(0, 3)),
            int(rng.integers(1, 4)),
        )
        s = optuna.create_study(direction=direction)
        others: dict[int, list[float]] = {}
        for j in range(int(rng.integers(0, 6))):
            n = int(rng.integers(1, 5))
            vals = rng.normal(size=n).tolist()
            others[j] = vals
            s.add_trial(
                create_trial(
                    value=vals[-1], intermediate_values={e + 1: v for e, v in enumerate(vals)}
                )
            )
        t = s.ask()
        mine = rng.normal(size=int(rng.integers(1, 5))).tolist()
        for e, v in enumerate(mine):
            t.report(v, e + 1)
        epoch = len(mine)
        pruner = optuna.pruners.PercentilePruner(
            pct, n_startup_trials=0, n_warmup_steps=warm + 1, n_min_trials=nmin
        )
        expect = pruner.prune(s, s._storage.get_trial(t._trial_id))
        at_epoch = [v[epoch - 1] for v in others.values() if len(v) >= epoch]
        got = percentile_rule(
            mine,
            at_epoch,
            direction=direction,
            percentile=pct,
            epoch=epoch,
            warmup_epochs=warm,
            min_trials=nmin,
            last_epoch=10**6,  # Optuna's pruner has no last-epoch guard
        )
        assert got == expect, (case, direction, pct, warm, nmin, mine, others)


# ----------------------------------------------------------------------------- storage, resume
def _dead_pid_tag() -> str:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return process_tag(p.pid).rsplit(":", 1)[0] + ":0"  # a pid that has exited


def test_budget_counts_and_stale_trials_are_failed_and_requeued(tmp_path: Path) -> None:
    s = optuna.create_study(storage=make_storage(str(tmp_path / "j.log")), study_name="b")
    dist = {"a": optuna.distributions.IntDistribution(0, 9)}
    for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        s.add_trial(
            create_trial(
                state=state,
                value=1.0 if state == TrialState.COMPLETE else None,
                params={"a": 1},
                distributions=dist,
            )
        )
    for tag, a in ((_dead_pid_tag(), 7), (process_tag(), 2), ("elsewhere:123:456", 3)):
        t = s.ask()
        t.suggest_int("a", 0, 9)
        t.set_user_attr("odeattn_pid", tag)
        s._storage.set_trial_param(t._trial_id, "a", a, dist["a"])
    assert budget_used(s) == 6
    stale = recover_stale(s)
    assert stale == [3]
    trials = s.get_trials()
    assert trials[3].state == TrialState.FAIL and trials[3].user_attrs["odeattn_stale"] is True
    assert [t.state for t in trials[4:6]] == [
        TrialState.RUNNING,
        TrialState.RUNNING,
    ]  # alive / other host
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].system_attrs["fixed_params"] == {"a": 7}
    assert waiting[0].user_attrs["odeattn_retry_of"] == 3
    assert budget_used(s) == 5  # the stale failure no longer counts; the re-queued one not yet


def test_same_seed_and_storage_kind_give_the_same_architectures(tmp_path: Path) -> None:
    study = load_study(ROOT / "studies" / "lth4sa.yaml")
    space = resolve_space(study)

    def draw(url: str, n: int = 6) -> list[dict]:
        s = backend.open_study(study, url, space)
        out = []
        for _ in range(n):
            t = s.ask()
            out.append(sample(t, space))
            s.tell(t, [0.5, 0.1, float(sum(out[-1].values()))])
        return out

    a = draw(f"sqlite:///{tmp_path}/a.db")
    b = draw(f"sqlite:///{tmp_path}/b.db")
    assert a == b
    assert len({tuple(sorted(p.items())) for p in a}) > 1
    j1, j2 = draw(str(tmp_path / "a.log")), draw(str(tmp_path / "b.log"))
    assert j1 == j2
    again = draw(f"sqlite:///{tmp_path}/a.db", 3)  # resumed: a new random stream, not a replay
    assert again != a[:3]


# ----------------------------------------------------------------------------- full loop, fake trials
CURVES = {
    0: [0.5, 0.8],
    1: [0.6, 0.9],
    2: [0.1, 0.2],
    3: [0.9, 0.95],
    4: [0.7, 0.92],
    5: [0.2, 0.3],
}


def _fake_run_trial(
    study: Any, params: dict, report: Any, *, trial: Any, space: Any, screen: Any, seed: Any = None
) -> dict:
    from odeattn.models import create_model
    from odeattn.search.trial._objective import build

    model, _ = build(study, space, params)
    arch = model.architecture()
    trial.set_user_attr("architecture", arch)
    n_params = sum(p.numel() for p in model.parameters())
    trial.set_user_attr("params", n_params)
    assert create_model(**arch) is not None
    epochs = 0
    for e, v in enumerate(CURVES[trial.number], start=1):
        epochs = e
        if report(e, {"val_accuracy": v}):
            break
    return {
        "val_accuracy": CURVES[trial.number][epochs - 1],
        "params": float(n_params),
        "epochs_run": float(epochs),
        "screened_out": 0.0,
    }


def test_multi_objective_pruning_budget_across_invocations_and_export(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(_replicates, "run_trial", _fake_run_trial)
    study_file = tmp_path / "mo.yaml"
    study_file.write_text(
        yaml.safe_dump(
            {
                "name": "mo",
                "search_space": str(ROOT / "search_spaces" / "lth4sa_placement.yaml"),
                "model": {
                    "name": "digits_resnet",
                    "kwargs": {"adaptor": "se", "blocks": [3, 3, 3]},
                },
                "objectives": [
                    {"metric": "val_accuracy", "direction": "maximize"},
                    {"metric": "params", "direction": "minimize"},
                ],
                "train": {"epochs": 2},
                "pruning": {"metric": "val_accuracy", "warmup_epochs": 0, "min_trials": 2},
                "sampler": {"name": "random", "seed": 0},
                "budget": {"n_trials": 4},
                "noise": {"trials": 0},
            }
        )
    )
    runs = tmp_path / "runs"
    args = [str(study_file), "--runs-dir", str(runs), "--quiet"]
    assert main(args) == 0
    storage = f"sqlite:///{runs}/mo/study.db"
    s = optuna.load_study(study_name="mo", storage=storage)
    states = [t.state for t in s.trials]
    # trial 2 ([0.1, ...]) is below the median of trials 0 and 1 at epoch 1 (0.55): pruned there
    assert states == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.COMPLETE,
    ]
    # per objective (the fake reports no per-epoch params) and the pruning metric, per epoch
    assert s.trials[2].user_attrs["intermediate"] == {"val_accuracy": [0.1], "params": [None]}
    assert s.trials[0].user_attrs["intermediate"]["val_accuracy"] == [0.5, 0.8]
    assert main(args) == 0  # second invocation, same total: nothing more runs
    assert len(optuna.load_study(study_name="mo", storage=storage).trials) == 4
    assert main([*args, "--n-trials", "6"]) == 0  # a larger total: exactly two more
    s = optuna.load_study(study_name="mo", storage=storage)
    assert len(s.trials) == 6 and budget_used(s) == 6
    # decisions only at epoch 1 of 2, against every trial that reached it (pruned included):
    # trial 4 (0.7) beats the median 0.55 of 0.5, 0.6, 0.1, 0.9; trial 5 (0.2) is below the
    # median 0.6 of the five
    assert s.trials[4].state == TrialState.COMPLETE and s.trials[5].state == TrialState.PRUNED
    # export: one file per Pareto-optimal trial (brute force), each rebuilding the same network
    done = [t for t in s.trials if t.state == TrialState.COMPLETE]
    front = {
        t.number
        for t in done
        if not any(
            o.values[0] >= t.values[0] and o.values[1] <= t.values[1] and o.values != t.values
            for o in done
        )
    }
    files = sorted((runs / "mo" / "best").glob("*.yaml"))
    assert {int(f.stem.split("_")[1]) for f in files} == front
    from odeattn.models import create_model

    for f in files:
        doc = yaml.safe_load(f.read_text())
        net = create_model(**doc["model"])
        assert (
            sum(p.numel() for p in net.parameters())
            == s.trials[doc["search"]["trial"]].user_attrs["params"]
        )
        assert doc["train"]["recipe"] == "digits"
    assert (runs / "mo" / "plots" / "pareto.png").stat().st_size > 0


# ----------------------------------------------------------------------------- one real trial
def test_run_trial_measures_what_it_reports(monkeypatch) -> None:
    from odeattn.proxies import count_flops, tns_at_init
    from odeattn.search.trial._objective import build
    from odeattn.study import _build

    monkeypatch.setenv("ODEATTN_THREADS", "1")
    torch.set_num_threads(1)
    study = load_study(ROOT / "studies" / "lth4sa.yaml", train={"recipe": "digits", "epochs": 1})
    space = resolve_space(study)
    params = {f"placement.s{s}.b{b}": int((s + b) % 2 == 0) for s in range(3) for b in range(4)}
    params["lr"] = 0.1
    seen: list[tuple[int, dict]] = []
    out = run_trial(study, params, lambda e, m: seen.append((e, m)) or False, space=space)
    assert [e for e, _ in seen] == [1] and math.isclose(
        seen[0][1]["val_accuracy"], out["val_accuracy"]
    )
    assert out["attention_blocks"] == "1010|0101|1010".count("1") == 6
    # rebuild the same initial network (run_trial seeds with sampler.seed + trial number 0)
    data = _build.data_for(study)
    torch.manual_seed(study.sampler.seed)
    model, _ = build(study, space, params, data)
    assert model.architecture()["placement"] == "1010|0101|1010"
    assert out["params"] == sum(p.numel() for p in model.parameters())
    assert out["flops"] == count_flops(model, (1, 8, 8))
    x = _build.input_batch(data, study.measure.samples)  # the fixed evaluation set, in batches
    b = study.measure.batch
    parts = [(len(x[i : i + b]), tns_at_init(model, x[i : i + b])) for i in range(0, len(x), b)]
    expect = sum(n * v for n, v in parts) / len(x)  # TNS is a mean over samples
    assert out["eval_samples"] == len(x) == min(study.measure.samples, len(data.val.x))
    assert math.isclose(out["tns@init"], expect, rel_tol=1e-9)
    assert out["seed"] == study.sampler.seed and out["threads"] == 1
    assert out["epochs_run"] == 1 and 0.0 <= out["val_accuracy"] <= 1.0 and out["tns"] >= 0.0


def test_screened_out_candidate_is_not_trained() -> None:
    """tns_proxy: a candidate the TNS screen rejects at init skips fit() entirely."""
    study = load_study(ROOT / "studies" / "tns_proxy.yaml")
    space = resolve_space(study)
    params = {"placement.k": 2, **{f"placement.r{i}": i / 12 for i in range(12)}}
    scores: list[float] = []
    epochs: list[int] = []
    out = run_trial(
        study,
        params,
        lambda e, m: epochs.append(e) or False,
        space=space,
        screen=lambda score: scores.append(score) or False,
    )
    assert epochs == [] and out["epochs_run"] == 0 and out["screened_out"] == 1.0
    assert scores == [out["screen_score"]] == [out["tns@init"]]
    assert math.isnan(out["val_accuracy"])
    assert out["attention_blocks"] == 2  # priorities 11/12, 10/12 win: "0000|0000|0011"


@pytest.mark.parametrize("name", ["tpe", "nsga2", "nsga3", "gp", "random", "grid"])
def test_every_sampler_builds_and_samples_the_space(name: str, tmp_path: Path) -> None:
    placement = str(ROOT / "search_spaces" / "lth4sa_placement.yaml")  # bits only: a finite grid
    study = load_study(
        ROOT / "studies" / "lth4sa.yaml", sampler={"name": name, "seed": 0}, search_space=placement
    )
    space = resolve_space(study)
    s = backend.open_study(study, str(tmp_path / "j.log"), space)
    assert type(s.sampler).__name__ == sampler_class(name).__name__
    seen = set()
    for _ in range(4):
        t = s.ask()
        flat = sample(t, space)
        seen.add(decode(space, flat).values["placement"])
        s.tell(t, [0.5, 0.1, float(sum(flat.values()))])
    if name == "grid":  # the grid enumerates distinct points: 2^12 placements (4-4-4)
        assert len(seen) == 4 and len(grid_space(space)) == 12


def test_default_storage_follows_workers_and_keeps_an_existing_study(tmp_path: Path) -> None:
    from odeattn.search import default_storage

    study = load_study(ROOT / "studies" / "lth4sa.yaml", runs_dir=str(tmp_path))
    assert default_storage(study, 1) == f"sqlite:///{tmp_path}/lth4sa/study.db"
    assert default_storage(study, 2) == f"{tmp_path}/lth4sa/journal.log"
    (tmp_path / "lth4sa").mkdir()
    (tmp_path / "lth4sa" / "study.db").touch()
    assert default_storage(study, 2) == f"sqlite:///{tmp_path}/lth4sa/study.db"  # continue it
    url = "postgresql+psycopg2://u:p@h/db"
    assert default_storage(load_study(ROOT / "studies" / "lth4sa.yaml", storage=url), 4) == url


# ----------------------------------------------------------------------------- budget race, heartbeat
def _race_study(tmp_path: Path, url: str, n_done: int) -> tuple[optuna.Study, optuna.Study]:
    s1 = optuna.create_study(storage=make_storage(url), study_name="race")
    for _ in range(n_done):
        s1.add_trial(create_trial(state=TrialState.COMPLETE, value=1.0))
    return s1, optuna.load_study(study_name="race", storage=make_storage(url))


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
@pytest.mark.parametrize("order", ["ask_check_ask_check", "ask_ask_check_check"])
def test_workers_passing_the_budget_check_together_run_exactly_the_budget(
    tmp_path: Path, kind: str, order: str
) -> None:
    url = f"sqlite:///{tmp_path}/r.db" if kind == "sqlite" else str(tmp_path / "r.log")
    s1, s2 = _race_study(tmp_path, url, 2)
    n = 3
    assert budget_used(s1) < n and budget_used(s2) < n  # both workers pass the pre-check
    if order == "ask_check_ask_check":
        a = backend._ask(s1, n)
        b = backend._ask(s2, n)
    else:  # both ask before either checks
        t1, t2 = s1.ask(), s2.ask()
        assert not backend._surplus(s1, t1, n) and backend._surplus(s2, t2, n)
        a, b = t1, None
        t2.set_user_attr("odeattn_surplus", True)
        s2.tell(t2, state=TrialState.FAIL)
    assert a is not None and a.number == 2 and b is None  # exactly one trains: the lower number
    s1.tell(a, 1.0)
    trials = s1.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 + [TrialState.FAIL]
    assert trials[3].user_attrs == {"odeattn_surplus": True}
    assert budget_used(s1) == n  # the surplus trial is not counted


def test_surplus_trial_is_not_trained_and_stops_the_worker(tmp_path: Path, monkeypatch) -> None:
    study = load_study(ROOT / "studies" / "lth4sa.yaml", budget={"n_trials": 3}, name="race")
    space = resolve_space(study)
    url = f"sqlite:///{tmp_path}/r.db"
    s1 = backend.open_study(study, url, space)
    for _ in range(2):
        s1.add_trial(create_trial(state=TrialState.COMPLETE, values=[0.5, 0.1, 1.0]))
    other = s1.ask()  # another worker asked first and is still training
    calls = []
    monkeypatch.setattr(_replicates, "run_trial", lambda *a, **k: calls.append(1) or {})
    s2 = backend.open_study(study, url, space, worker=1)
    assert budget_used(s2) == 3
    assert backend._one_trial(study, space, s2, lambda *_: None) is False
    assert calls == []  # never trained
    s1.tell(other, [0.5, 0.1, 1.0])
    assert budget_used(s1) == 3 and s1.get_trials()[-1].user_attrs.get("odeattn_surplus") is True


def test_stale_heartbeat_from_another_host_is_failed_and_requeued(tmp_path: Path) -> None:
    import sqlite3

    from odeattn.search.storage import _storage

    db = tmp_path / "hb.db"
    url = f"sqlite:///{db}"
    s = optuna.create_study(storage=make_storage(url), study_name="hb")
    dist = optuna.distributions.IntDistribution(0, 9)
    rows = []
    for a in (4, 5):
        t = s.ask()
        s._storage.set_trial_param(t._trial_id, "a", a, dist)
        t.set_user_attr("odeattn_pid", "another-host:123:456")  # pid check cannot tell: alive
        with _storage.heartbeat(s._storage, t._trial_id):  # records one heartbeat at once
            pass
        rows.append(t._trial_id)
    assert s._storage.get_heartbeat_interval() == _storage.HEARTBEAT_INTERVAL
    con = sqlite3.connect(db)  # trial 0's last heartbeat: older than the grace period
    con.execute(
        "UPDATE trial_heartbeats SET heartbeat = datetime('now', ?) WHERE trial_id = ?",
        (f"-{_storage.HEARTBEAT_GRACE + 60} seconds", rows[0]),
    )
    con.commit()
    con.close()
    s = optuna.load_study(study_name="hb", storage=make_storage(url))
    assert budget_used(s) == 2
    assert recover_stale(s) == [0]
    trials = s.get_trials()
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["odeattn_stale"] is True
    assert trials[1].state == TrialState.RUNNING  # fresh heartbeat: left alone
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].system_attrs["fixed_params"] == {"a": 4}
    assert waiting[0].user_attrs["odeattn_retry_of"] == 0
    assert budget_used(s) == 1
    assert recover_stale(s) == []  # nothing more to recover; no second re-queue
    assert len([t for t in s.get_trials() if t.state == TrialState.WAITING]) == 1


def test_heartbeat_thread_beats_while_the_trial_runs(tmp_path: Path, monkeypatch) -> None:
    from odeattn.search.storage import _storage

    s = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path}/t.db"), study_name="t")
    t = s.ask()
    beats = []
    real = s._storage.record_heartbeat
    monkeypatch.setattr(s._storage, "record_heartbeat", lambda i: beats.append(i) or real(i))
    monkeypatch.setattr(s._storage, "get_heartbeat_interval", lambda: 0.01)
    import time

    with _storage.heartbeat(s._storage, t._trial_id) as hb:
        for _ in range(1000):  # wait (at most ~10 s) for the thread's beats, no timing asserted
            if len(beats) >= 3:
                break
            time.sleep(0.01)
    assert (
        len(beats) >= 3
        and hb._thread is not None
        and not hb._thread.is_alive()
        and set(beats) == {t._trial_id}
    )
    j = optuna.create_study(storage=make_storage(str(tmp_path / "j.log")), study_name="j")
    with _storage.heartbeat(j._storage, j.ask()._trial_id) as hb:
        assert hb._thread is None  # the journal has no heartbeat: a no-op
