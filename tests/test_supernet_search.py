"""``strategy: supernet`` end to end: train once, score every architecture as an Optuna trial,
retrain the best from scratch; resume, interrupts, workers, Ray, and the one-line refusal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

from odeattn.models import create_model
from odeattn.proxies import count_params
from odeattn.search.__main__ import main
from odeattn.search.oneshot import SUFFIX, picks, retrain_best, train_supernet
from odeattn.search.storage import budget_used
from odeattn.search.trial import score_trial
from odeattn.study import data_for, load_study, resolve_space, sample
from odeattn.supernet import from_study, score, supernet_plan
from odeattn.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = """
name: tiny_sn
search_space: {space}
strategy: supernet
data: {{name: digits, val_fraction: 0.3}}
model:
  name: digits_resnet
  kwargs: {{adaptor: se, blocks: [2, 2, 2], widths: [4, 8, 8], stem_width: 4}}
train: {{recipe: digits, epochs: 1}}
objectives:
  - {{metric: val_accuracy, direction: maximize}}
  - {{metric: attention_blocks, direction: minimize}}
measure: {{samples: 64, batch: 32}}
noise: {{trials: 0, bootstrap: 100}}
supernet: {{epochs: {epochs}, sandwich: false, recal_batches: 2, top_k: 3}}
sampler: {{name: reinforce, seed: 0}}
budget: {{n_trials: 6}}
"""
PLACEMENT = ROOT / "search_spaces" / "lth4sa_placement.yaml"


def _tiny(tmp_path: Path, epochs: int = 1, **extra: str) -> Path:
    path = tmp_path / "tiny_sn.yaml"
    text = TINY.format(space=PLACEMENT, epochs=epochs)
    path.write_text(text + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    return path


def _load(runs: Path, name: str = "tiny_sn") -> optuna.Study:
    url = f"sqlite:///{runs / 'tiny_sn' / 'study.db'}"
    return optuna.load_study(study_name=name, storage=url)


def test_a_supernet_trial_stores_the_score_of_its_architecture(tmp_path: Path) -> None:
    study = load_study(_tiny(tmp_path), runs_dir=str(tmp_path / "runs"))
    train_supernet(study, Console(quiet=True))
    space, plan = resolve_space(study), supernet_plan(study)
    s = optuna.create_study(directions=study.directions)
    t = s.ask()
    params = sample(t, space)
    out = score_trial(study, params, None, trial=t)
    s.tell(t, [out[n] for n in study.objective_names])
    fresh = from_study(study)  # loaded on its own, away from the trial's cached copy
    fresh.load_state_dict(load_checkpoint(plan.checkpoint)["model"])
    fresh.eval()
    ref = score(fresh, fresh.arch_of(params), data_for(study), recal_batches=2, batch_size=64)
    stored = s.trials[0]
    assert stored.user_attrs["val_accuracy"] == ref["val_accuracy"] == stored.values[0]
    assert stored.user_attrs["supernet_accuracy"] == ref["val_accuracy"]
    arch = stored.user_attrs["architecture"]  # the extracted stand-alone network
    placement = fresh.arch_of(params)["placement"]
    assert arch["placement"] == placement
    assert stored.user_attrs["attention_blocks"] == placement.count("1") == stored.values[1]
    assert stored.user_attrs["params"] == count_params(create_model(**arch), trainable_only=False)
    assert stored.user_attrs["flops"] > 0 and stored.user_attrs["epochs_run"] == 0


def test_strategy_supernet_end_to_end_and_a_rerun_does_nothing(tmp_path: Path, capsys) -> None:
    path, runs = _tiny(tmp_path), tmp_path / "runs"
    args = [str(path), "--runs-dir", str(runs), "--quiet"]
    assert main(args) == 0
    s, rs = _load(runs), _load(runs, "tiny_sn" + SUFFIX)
    assert budget_used(s) == 6 and len(s.trials) == 6
    assert all(t.state == TrialState.COMPLETE for t in s.trials)
    assert all(t.user_attrs["strategy"] == "supernet" for t in s.trials)
    chosen = picks(load_study(path, runs_dir=str(runs)), s)
    assert len(chosen) == 3 and len(rs.trials) == 3
    assert all(
        t.state == TrialState.COMPLETE and t.user_attrs["epochs_run"] == 1 for t in rs.trials
    )
    assert sorted(map(str, (t.params for t, _ in chosen))) == sorted(
        map(str, (t.params for t in rs.trials))
    )
    result = s.user_attrs["supernet_retrain"]
    by_number = {t.number: t for t in s.trials}
    for row in result["rows"]:  # side by side: the supernet's and the stand-alone accuracy
        assert row["supernet"] == by_number[row["trial"]].values[0]
        assert row["standalone"] == rs.trials[row["retrain_trial"]].user_attrs["val_accuracy"]
    assert result["kendall"]["n"] == 3
    ck = supernet_plan(load_study(path, runs_dir=str(runs))).checkpoint
    stamp = ck.stat().st_mtime_ns
    assert main([str(path), "--runs-dir", str(runs)]) == 0  # again: nothing trained or scored
    out = capsys.readouterr().out
    assert "step 1 skipped" not in out  # the budget is spent: step 1 is not even looked at
    assert "supernet score vs stand-alone accuracy" in out and "Kendall τ" in out
    assert ck.stat().st_mtime_ns == stamp
    assert len(_load(runs).trials) == 6 and len(_load(runs, "tiny_sn" + SUFFIX).trials) == 3
    scratch = tmp_path / "scratch.yaml"  # the same study trained from scratch: not mixed in
    lines = path.read_text().splitlines()
    scratch.write_text("\n".join(ln for ln in lines if not ln.startswith(("strategy", "supernet"))))
    assert main([str(scratch), "--runs-dir", str(runs), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1 and ": strategy: study 'tiny_sn' was scored by a supernet" in err
    )


def test_step_3_resumed_after_an_interrupt_enqueues_nothing_twice(tmp_path: Path) -> None:
    study = load_study(_tiny(tmp_path), runs_dir=str(tmp_path / "runs"))
    space, url = resolve_space(study), f"sqlite:///{tmp_path / 's.db'}"
    s = optuna.create_study(study_name=study.name, storage=url, directions=study.directions)
    for i in range(5):  # five scored architectures, all on the front: top 3 = trials 4, 3, 2
        s.enqueue_trial(
            {f"placement.s{j}.b{k}": int(2 * j + k < i) for j in range(3) for k in range(2)}
        )
        t = s.ask()
        sample(t, space)
        t.set_user_attr("val_accuracy", 0.9 + i / 100)
        s.tell(t, [0.9 + i / 100, float(i)])
    assert [t.number for t, _ in picks(study, s)] == [4, 3, 2]

    def interrupted(cfg):  # the first pick starts, Ctrl-C: re-queued as the worker does
        rs = optuna.load_study(study_name=cfg.name, storage=url)
        t = rs.ask()
        sample(t, space)
        t.set_user_attr("odeattn_stale", True)
        rs.enqueue_trial(dict(t.params), user_attrs={"odeattn_retry_of": t.number})
        rs.tell(t, state=TrialState.FAIL)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retrain_best(study, s, url, Console(quiet=True), interrupted)
    budgets = []

    def resumed(cfg):
        budgets.append(cfg.budget.n_trials)
        return optuna.load_study(study_name=cfg.name, storage=url)

    retrain_best(study, s, url, Console(quiet=True), resumed)
    rs = optuna.load_study(study_name=study.name + SUFFIX, storage=url)
    assert budgets == [3] and len(rs.trials) == 4  # three picks and the one re-queue
    assert [t.state for t in rs.trials] == [TrialState.FAIL] + [TrialState.WAITING] * 3


def test_a_study_the_supernet_cannot_share_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"  # the space also searches the learning rate: nothing to score
    lr = ROOT / "search_spaces" / "lth4sa_digits.yaml"
    bad.write_text(_tiny(tmp_path).read_text().replace(str(PLACEMENT), str(lr)))
    r = subprocess.run(
        [sys.executable, "-m", "odeattn.search", str(bad), "--runs-dir", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "lth4sa_digits.yaml: params.lr: 'train.lr' is a training setting" in lines[0]
    assert lines[0].endswith("use a train-from-scratch search (strategy: scratch)")
    assert not (tmp_path / "r").exists()


def _cli(tmp_path: Path, path: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "odeattn.search", str(path), "--runs-dir", str(tmp_path / "runs")]
    return [*cmd, *extra]


@pytest.mark.slow
def test_ctrl_c_in_step_1_exits_130_and_the_rerun_resumes_the_supernet(tmp_path: Path) -> None:
    env = {**os.environ, "ODEATTN_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    path = _tiny(tmp_path, epochs=40)
    log = tmp_path / "first.log"
    with log.open("w") as f:
        proc = subprocess.Popen(
            _cli(tmp_path, path), cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 240
        while "supernet epoch 2/" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    assert "re-run the same command" in log.read_text() and "Traceback" not in log.read_text()
    done = int(
        load_checkpoint(next((tmp_path / "runs" / "tiny_sn" / "supernet").glob("*.pt")))["epoch"]
    )
    assert 1 <= done < 40  # epoch 2 was reported; its checkpoint may not be written yet
    r = subprocess.run(
        _cli(tmp_path, path), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr
    assert f"resumed after epoch {done}" in r.stdout and f"supernet epoch {done + 1}/40" in r.stdout
    assert "supernet epoch 1/40" not in r.stdout
    s = _load(tmp_path / "runs")
    assert budget_used(s) == 6 and not [t for t in s.trials if t.state == TrialState.RUNNING]


@pytest.mark.slow
def test_workers_score_with_one_supernet_each_and_keep_the_budget(tmp_path: Path) -> None:
    env = {**os.environ, "ODEATTN_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    path = _tiny(tmp_path)
    r = subprocess.run(_cli(tmp_path, path, "--workers", "2", "--quiet"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    url = str(tmp_path / "runs" / "tiny_sn" / "journal.log")
    s = optuna.load_study(study_name="tiny_sn", storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url)))  # fmt: skip
    assert budget_used(s) == 6 and all(t.state == TrialState.COMPLETE for t in s.trials)
    assert len({t.user_attrs["odeattn_pid"] for t in s.trials}) == 2  # both workers scored
    rs = optuna.load_study(study_name="tiny_sn" + SUFFIX, storage=s._storage)
    assert [t.state for t in rs.trials] == [TrialState.COMPLETE] * 3


@pytest.mark.slow
@pytest.mark.ray
def test_the_ray_backend_scores_through_the_same_trial_function(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    env = {**os.environ, "ODEATTN_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    path = _tiny(tmp_path)
    r = subprocess.run(_cli(tmp_path, path, "--backend", "ray", "--quiet"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    s = _load(tmp_path / "runs")
    assert budget_used(s) == 6 and all(t.state == TrialState.COMPLETE for t in s.trials)
    assert all(t.user_attrs["strategy"] == "supernet" for t in s.trials)
    assert len(_load(tmp_path / "runs", "tiny_sn" + SUFFIX).trials) == 3


@pytest.mark.parametrize(
    ("attrs", "label"),
    [
        ({"placement": "110|011", "adaptor": "se"}, "110|011"),
        (
            {"placement": None, "adaptor": [["se", "none"], ["eca", "se", "se"]]},
            "se,none|eca,se,se",
        ),
        ({"adaptor": "stepnet", "method": "heun"}, "stepnet heun"),
        ({}, ""),
    ],
)
def test_the_retrain_table_names_each_architecture(attrs: dict, label: str) -> None:
    from odeattn.search.oneshot._retrain import arch_label

    assert arch_label(attrs) == label
