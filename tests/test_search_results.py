"""Issue 12, the search's results you can trust: pruning that saves work and respects the front,
finished trials on the front, duplicates served from storage, replicates, fail early and loud,
correlations that are never "nan"."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from odeattn.search import budget_used
from odeattn.search.__main__ import main
from odeattn.search.backends.optuna import _worker as backend
from odeattn.search.backends.optuna._prune import decide, dominated_rule, percentile_rule
from odeattn.search.results._export import best_trials, export_best
from odeattn.search.results._front import best_of, finished
from odeattn.search.results._noise import format_corr, kendall_ci
from odeattn.search.trial import _objective, _replicates
from odeattn.search.trial._dashboard import arch_document
from odeattn.search.trial._metrics import _batch_se
from odeattn.study import plan_for
from odeattn.study.config._load import load_study

ROOT = Path(__file__).resolve().parents[1]
optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = str(ROOT / "search_spaces" / "lth4sa_placement.yaml")
MAX, MIN = "maximize", "minimize"


def _write(tmp_path: Path, **over: Any) -> Path:
    doc = {
        "name": "r",
        "search_space": SPACE,
        "model": {"name": "digits_resnet", "kwargs": {"adaptor": "se", "blocks": [3, 3, 3]}},
        "train": {"epochs": 3},
        "objectives": [
            {"metric": "val_accuracy", "direction": MAX},
            {"metric": "attention_blocks", "direction": MIN},
        ],
        "sampler": {"name": "random", "seed": 0},
        "budget": {"n_trials": 3},
        "noise": {"trials": 0},
        **over,
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


# ----------------------------------------------------------------------------- pruning rules
def test_no_rule_ever_prunes_at_the_last_epoch() -> None:
    worst = dict(direction=MAX, percentile=50.0, warmup_epochs=0, min_trials=1)
    assert percentile_rule([0.0, 0.0], [1.0, 1.0], epoch=2, last_epoch=3, **worst)
    assert not percentile_rule([0.0, 0.0, 0.0], [1.0] * 5, epoch=3, last_epoch=3, **worst)
    dom = dict(directions=[MAX, MIN], k=1, warmup_epochs=0, min_trials=1)
    assert dominated_rule([0.1, 9], [[0.9, 1]], epoch=1, last_epoch=3, **dom)
    assert not dominated_rule([0.1, 9], [[0.9, 1]], epoch=3, last_epoch=3, **dom)


def test_dominated_rule_needs_k_dominators_and_spares_the_front() -> None:
    others = [[0.9, 2.0], [0.8, 1.0], [0.95, 5.0], [0.5, 1.0]]
    kw = dict(directions=[MAX, MIN], epoch=2, warmup_epochs=1, min_trials=3, last_epoch=5)
    # (0.7, 3) is dominated by (0.9, 2) and (0.8, 1) only
    assert dominated_rule([0.7, 3.0], others, k=2, **kw)
    assert not dominated_rule([0.7, 3.0], others, k=3, **kw)
    # (0.99, 9) is best in accuracy: on the epoch-2 front, never pruned whatever k
    assert not dominated_rule([0.99, 9.0], others, k=1, **kw)
    assert not dominated_rule([0.7, 3.0], others[:2], k=1, **kw)  # fewer than min_trials


def _with(study: optuna.Study, state: TrialState, inter: dict, number_params: int) -> None:
    study.add_trial(
        create_trial(
            state=state,
            values=[0.5, 1.0] if state == TrialState.COMPLETE else None,
            params={"x": number_params},
            distributions={"x": CategoricalDistribution(list(range(20)))},
            user_attrs={"intermediate": inter},
        )
    )


def test_reference_set_holds_pruned_trials_too(tmp_path: Path) -> None:
    """Comparing against completed trials only would let the bar ratchet upwards."""
    study = load_study(
        _write(tmp_path, pruning={"metric": "val_accuracy", "warmup_epochs": 0, "min_trials": 3})
    )
    s = optuna.create_study(directions=[MAX, MIN])
    _with(s, TrialState.COMPLETE, {"val_accuracy": [0.9, 0.95, 0.97]}, 0)
    _with(s, TrialState.COMPLETE, {"val_accuracy": [0.8, 0.9, 0.95]}, 1)
    _with(s, TrialState.PRUNED, {"val_accuracy": [0.1]}, 2)
    _with(s, TrialState.PRUNED, {"val_accuracy": [0.2]}, 3)
    # at epoch 1 the median of 0.9, 0.8, 0.1, 0.2 is 0.5: 0.6 survives (completed-only: 0.85)
    assert not decide(study, s, 99, {"val_accuracy": [0.6]}, 1)
    assert decide(study, s, 99, {"val_accuracy": [0.4]}, 1)
    assert not decide(study, s, 99, {"val_accuracy": [0.4, 0.4, 0.4]}, 3)  # the last epoch


# ----------------------------------------------------------------------------- the front
def _trial(state: TrialState, values: list[float], epochs: int, number: int) -> Any:
    arch = {
        "name": "digits_resnet",
        "adaptor": "se",
        "blocks": [3, 3, 3],
        "placement": "100|000|000",
    }
    return create_trial(
        state=state,
        values=values if state == TrialState.COMPLETE else None,
        params={"x": number},
        distributions={"x": CategoricalDistribution(list(range(20)))},
        user_attrs={
            "epochs_run": epochs,
            "objectives": {"val_accuracy": values[0], "attention_blocks": values[1]},
            "architecture": arch,
            "params": 1,
        },
    )


def test_a_non_dominated_trial_pruned_at_its_final_epoch_enters_the_front(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path, runs_dir=str(tmp_path / "runs")))
    s = optuna.create_study(directions=[MAX, MIN])
    s.add_trial(_trial(TrialState.COMPLETE, [0.80, 3], 3, 0))
    s.add_trial(_trial(TrialState.COMPLETE, [0.70, 5], 3, 1))  # dominated by trial 0
    s.add_trial(_trial(TrialState.PRUNED, [0.90, 4], 3, 2))  # pruned after all 3 epochs
    s.add_trial(_trial(TrialState.PRUNED, [0.99, 1], 1, 3))  # pruned early: no final values
    assert [t.number for t, _ in finished(study, s)] == [0, 1, 2]
    assert [t.number for t, _ in best_of(study, s)] == [0, 2]
    assert [t.number for t in best_trials(study, s)] == [0, 2]
    assert {t.number for t in s.best_trials} == {0}  # what Optuna alone would report
    files = export_best(study, s)
    assert [p.name for p in files] == ["trial_0.yaml", "trial_2.yaml"]
    doc = yaml.safe_load(files[1].read_text())
    assert doc["search"]["values"] == {"val_accuracy": 0.9, "attention_blocks": 4}
    assert doc["search"]["state"] == "PRUNED"
    assert doc["train"]["epochs"] == 3  # the training settings the search used


def test_the_front_lists_each_configuration_once(tmp_path: Path) -> None:
    """A repeat served from storage copies its source's values; only the source is on the front
    and in best/ (they are the same configuration)."""
    study = load_study(_write(tmp_path, runs_dir=str(tmp_path / "runs")))
    s = optuna.create_study(directions=[MAX, MIN])
    s.add_trial(_trial(TrialState.COMPLETE, [0.80, 3], 3, 0))
    s.add_trial(_trial(TrialState.COMPLETE, [0.90, 5], 3, 1))
    served = _trial(TrialState.COMPLETE, [0.80, 3], 3, 0)
    served.set_user_attr("duplicate_of", 0)
    s.add_trial(served)  # trial 2: trial 0's configuration, served
    assert [t.number for t, _ in finished(study, s)] == [0, 1, 2]
    assert [t.number for t, _ in best_of(study, s)] == [0, 1]
    assert [p.name for p in export_best(study, s)] == ["trial_0.yaml", "trial_1.yaml"]


def test_exported_train_section_reproduces_the_search_config(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path, train={"epochs": 4, "overrides": {"lr": 0.05}}))
    doc = arch_document(study, {"name": "digits_resnet"}, {"batch_size": 32})
    from odeattn.train import RECIPES, TrainConfig

    cfg = TrainConfig.from_dict({k: v for k, v in doc["train"].items() if k != "recipe"})
    used = plan_for(study).train_config({"batch_size": 32}, None)
    assert cfg.epochs == used.epochs == 4 and cfg.lr == 0.05 and cfg.batch_size == 32
    assert cfg.warmup_epochs == used.warmup_epochs != RECIPES["digits"].warmup_epochs


# ----------------------------------------------------------------------------- duplicates, seeds
def _fake(calls: list[tuple[dict, Any]]) -> Any:
    def run_trial(study, params, report, *, trial=None, space=None, screen=None, seed=None):
        calls.append((dict(params), seed))
        acc = 0.5 + 0.01 * (seed % 7)  # depends on the seed only: replicates differ
        for e in range(1, 4):
            if report is not None and report(e, {"val_accuracy": acc}):
                return {"val_accuracy": acc, "attention_blocks": 2.0, "epochs_run": float(e)}
        if trial is not None:
            trial.set_user_attr("architecture", {"name": "digits_resnet", "placement": "1"})
        return {"val_accuracy": acc, "attention_blocks": 2.0, "epochs_run": 3.0}

    return run_trial


def test_duplicate_configuration_is_served_from_storage(tmp_path: Path, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(_replicates, "run_trial", _fake(calls))
    runs = tmp_path / "runs"
    path = _write(tmp_path, runs_dir=str(runs))
    study = load_study(path)
    s = backend.open_study(study, f"sqlite:///{tmp_path}/d.db", _space(study))
    bits = {f"placement.s{a}.b{b}": (a + b) % 2 for a in range(3) for b in range(3)}
    s.enqueue_trial(bits)
    s.enqueue_trial(bits)
    s.enqueue_trial({**bits, "placement.s0.b0": 1 - bits["placement.s0.b0"]})
    assert backend.worker_loop(study, f"sqlite:///{tmp_path}/d.db") == 3
    s = optuna.load_study(study_name="r", storage=f"sqlite:///{tmp_path}/d.db")
    assert len(calls) == 2  # trials 0 and 2 trained, trial 1 served
    t0, t1, t2 = s.trials
    assert t1.user_attrs["duplicate_of"] == 0 and t1.values == t0.values
    assert t1.params == t0.params and "duplicate_of" not in t2.user_attrs
    assert budget_used(s) == 3


def _space(study: Any) -> Any:
    from odeattn.search import resolve_space

    return resolve_space(study)


def test_replicates_train_k_seeds_and_store_mean_and_se(tmp_path: Path, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(_replicates, "run_trial", _fake(calls))
    study = load_study(_write(tmp_path, replicates=3, budget={"n_trials": 1}))
    url = f"sqlite:///{tmp_path}/rep.db"
    backend.worker_loop(study, url)
    (t,) = optuna.load_study(study_name="r", storage=url).trials
    seeds = [sd for _, sd in calls]
    assert seeds == t.user_attrs["seeds"] and len(set(seeds)) == 3 and seeds[0] == 0
    accs = np.array([0.5 + 0.01 * (sd % 7) for sd in seeds])
    assert math.isclose(t.values[0], accs.mean())
    se = t.user_attrs["objectives_se"]["val_accuracy"]
    assert math.isclose(se, accs.std(ddof=1) / math.sqrt(3))


# ----------------------------------------------------------------------------- fail early, loud
def test_setup_failure_exits_2_and_spends_no_budget(tmp_path: Path, monkeypatch, capsys) -> None:
    runs = tmp_path / "runs"
    path = _write(tmp_path, runs_dir=str(runs))

    def broken(study: Any) -> Any:
        raise OSError("[binary: cifar-10-batches-bin] is missing")

    monkeypatch.setattr(_objective, "data_for", broken)
    assert main([str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[binary: cifar-10-batches-bin]" in err[0]  # one line, markup kept
    s = optuna.load_study(study_name="r", storage=f"sqlite:///{runs}/r/study.db")
    assert [t.state for t in s.trials] == [TrialState.FAIL] and budget_used(s) == 0
    monkeypatch.undo()
    monkeypatch.setattr(_replicates, "run_trial", _fake([]))
    assert main([str(path), "--quiet"]) == 0  # the data is back: the whole budget runs
    s = optuna.load_study(study_name="r", storage=f"sqlite:///{runs}/r/study.db")
    assert budget_used(s) == 3 and sum(t.state == TrialState.COMPLETE for t in s.trials) == 3


def test_a_run_whose_every_trial_failed_exits_non_zero(tmp_path: Path, monkeypatch, capsys) -> None:
    def explode(*a: Any, **k: Any) -> Any:
        raise RuntimeError("diverged [red]x[/]")

    monkeypatch.setattr(_replicates, "run_trial", explode)
    path = _write(tmp_path, runs_dir=str(tmp_path / "runs"))
    assert main([str(path)]) == 1
    out = capsys.readouterr()
    assert "all 3 trials failed" in out.err and "diverged [red]x[/]" in out.out  # not eaten


def test_unknown_dataset_and_missing_files_stop_before_the_study(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    bad = _write(tmp_path, runs_dir=str(runs), data={"name": "digitz"})
    for args in ([str(bad)], [str(bad), "--dry-run"]):
        assert main(args) == 2
        assert (
            "data.name: unknown dataset 'digitz'; did you mean 'digits'?" in capsys.readouterr().err
        )
    empty = tmp_path / "empty"
    empty.mkdir()
    cifar = _write(
        tmp_path,
        runs_dir=str(runs),
        data={"name": "cifar10", "root": str(empty)},
        model={
            "name": "digits_resnet",
            "kwargs": {"adaptor": "se", "blocks": [3, 3, 3], "in_channels": 3},
        },
    )
    assert main([str(cifar), "--quiet"]) == 2
    assert "data: cannot load the data" in capsys.readouterr().err
    assert not (runs / "r" / "study.db").exists()  # nothing was created
    assert main([str(cifar), "--dry-run"]) == 0
    assert "synthetic batch" in capsys.readouterr().out


def test_model_construction_errors_are_reported_as_they_are(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, model={"name": "digits_resnet", "kwargs": {"adaptr": "se"}})
    assert main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "model.kwargs.adaptr: not an argument of 'digits_resnet'; did you mean 'adaptor'?" in err
    path = _write(tmp_path, model={"name": "digits_resnet", "kwargs": {"blocks": [3, -1, 3]}})
    assert main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "model.kwargs: create_model('digits_resnet', ...) failed: `blocks` must" in err
    assert "unknown model" not in err


# ----------------------------------------------------------------------------- noise numbers
def test_correlations_carry_n_and_a_ci_and_are_never_nan() -> None:
    assert format_corr(kendall_ci([1, 2], [3, 4])) == "Kendall τ undefined (n = 2: needs n ≥ 3)"
    assert "constant values" in format_corr(kendall_ci([1, 1, 1, 1], [1, 2, 3, 4]))
    c = kendall_ci([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], n_boot=200)
    assert math.isclose(c["tau"], 1.0) and math.isclose(c["hi"], 1.0) and c["n"] == 6
    c = kendall_ci(np.arange(30), np.random.default_rng(0).normal(size=30), n_boot=500)
    assert c["lo"] < c["tau"] < c["hi"] and "nan" not in format_corr(c)


def test_tns_standard_error_is_the_spread_of_batch_means() -> None:
    x = np.array([1.0, 1.0, 3.0, 3.0, 5.0, 5.0, 9.0])  # batches of 2: means 1, 3, 5 (9 left over)
    assert math.isclose(_batch_se(x, 2), np.std([1, 3, 5], ddof=1) / math.sqrt(3))
    assert math.isnan(_batch_se(x, 4))  # one full batch: no spread to measure


@pytest.mark.parametrize("rule", ["median", "dominated"])
def test_study_schema_accepts_the_pruning_rules(tmp_path: Path, rule: str) -> None:
    study = load_study(_write(tmp_path, pruning={"rule": rule, "k": 2}))
    assert study.pruning.rule == rule and study.pruning.k == 2


def test_stiffness_plot_title_never_reads_nan() -> None:
    from odeattn.stiffness._plots import _corr_text, rank_correlations

    text = _corr_text(rank_correlations([1.0, 2.0], [3.0, 4.0]))
    assert "nan" not in text and "n = 2" in text and "undefined" in text
    assert "(n = 4)" in _corr_text(rank_correlations([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]))


def test_a_trial_is_reproducible_for_a_given_seed_and_thread_count() -> None:
    import torch

    from odeattn.search import resolve_space, run_trial

    study = load_study(ROOT / "studies" / "lth4sa.yaml", train={"recipe": "digits", "epochs": 1})
    space = resolve_space(study)
    params = {f"placement.s{s}.b{b}": (s + b) % 2 for s in range(3) for b in range(4)}
    params["lr"] = 0.05
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = (run_trial(study, params, None, space=space, seed=7) for _ in range(2))
    finally:
        torch.set_num_threads(threads)
    keys = ("val_accuracy", "val_loss", "tns", "tns_se", "tns@init")
    assert [a[k] for k in keys] == [b[k] for k in keys]
    assert a["seed"] == 7 and a["threads"] == 1


def test_dominated_rule_needs_several_objectives(tmp_path: Path) -> None:
    from odeattn.study.config._base import ConfigError

    one = [{"metric": "val_accuracy", "direction": MAX}]
    with pytest.raises(ConfigError, match=r"pruning\.rule: `dominated` needs two or more"):
        load_study(_write(tmp_path, objectives=one, pruning={"rule": "dominated"}))


def test_summary_lists_failed_trials_with_their_markup_intact(tmp_path: Path) -> None:
    from rich.console import Console

    from odeattn.search.results._export import summary_table

    study = load_study(_write(tmp_path))
    s = optuna.create_study(directions=[MAX, MIN])
    s.add_trial(_trial(TrialState.COMPLETE, [0.8, 3], 3, 0))
    s.add_trial(
        create_trial(state=TrialState.FAIL, user_attrs={"error": "OSError: [binary: x] missing"})
    )
    console = Console(record=True, width=200)
    console.print(summary_table(study, s))
    text = console.export_text()
    assert "trial 1 failed: OSError: [binary: x] missing" in text
    assert "noise ceiling: not measured" in text and "n = 1: needs n ≥ 3" in text


# ----------------------------------------------------------------------------- issue 18
def test_replicates_store_the_mean_in_the_dashboard_columns(tmp_path: Path, monkeypatch) -> None:
    # defect 6: val_accuracy attribute = replicate 0 while the trial's value was the mean
    calls: list = []
    monkeypatch.setattr(_replicates, "run_trial", _fake(calls))
    study = load_study(_write(tmp_path, replicates=3, budget={"n_trials": 1}))
    url = f"sqlite:///{tmp_path}/rep.db"
    backend.worker_loop(study, url)
    (t,) = optuna.load_study(study_name="r", storage=url).trials
    assert math.isclose(t.user_attrs["val_accuracy"], t.values[0])
    assert len(t.user_attrs["replicate_values"]["val_accuracy"]) == 3


def test_constraints_keep_infeasible_trials_off_the_front(tmp_path: Path, monkeypatch) -> None:
    # a front of usable networks: a floor on val_accuracy (seed 0 -> 0.50, 1 -> 0.51, 2 -> 0.52)
    calls: list = []
    monkeypatch.setattr(_replicates, "run_trial", _fake(calls))
    runs = tmp_path / "runs"
    floor = [{"metric": "val_accuracy", "min": 0.515}]
    path = _write(tmp_path, runs_dir=str(runs), constraints=floor)
    assert main([str(path), "--quiet"]) == 0
    s = optuna.load_study(study_name="r", storage=f"sqlite:///{runs}/r/study.db")
    viol = {t.number: t.user_attrs["constraint_violations"] for t in s.trials}
    assert viol == {n: [pytest.approx(0.515 - (0.5 + 0.01 * n))] for n in range(3)}
    doc = json.loads((runs / "r" / "summary.json").read_text())
    assert doc["infeasible"] == 2 and [b["trial"] for b in doc["front"]] == [2]
    assert [p.name for p in (runs / "r" / "best").glob("*.yaml")] == ["trial_2.yaml"]
    md = (runs / "r" / "summary.md").read_text()
    assert "2 infeasible" in md and "Pareto front: 1" in md
    key = "val_accuracy>=0.515"  # what the samplers read (Optuna's Trial.set_constraint)
    assert [t.constraints[key] for t in s.trials] == [v[0] for v in viol.values()]


def test_the_ray_backend_trains_every_replicate(tmp_path: Path, monkeypatch) -> None:
    # defect 3: `replicates` was silently ignored on the Ray backend; its worker-side trial
    # function is now the same replicate loop as the optuna backend's
    from odeattn.search.backends.ray._study import StudyTrial

    calls: list = []
    monkeypatch.setattr(_replicates, "run_trial", _fake(calls))
    study = load_study(_write(tmp_path, replicates=3, backend="ray", pruning=None))
    s = optuna.create_study(directions=study.directions)
    trial = s.ask()
    out = StudyTrial(_space(study))(study, {"placement.s0.b0": 1}, lambda *a: False, trial=trial)
    assert [sd for _, sd in calls] == plan_for(study).seeds(trial.number)  # 3 seeds, in order
    accs = [0.5 + 0.01 * (sd % 7) for _, sd in calls]
    assert math.isclose(out["val_accuracy"], float(np.mean(accs)))
    assert trial.user_attrs["seeds"] == plan_for(study).seeds(trial.number)
