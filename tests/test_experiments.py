"""Issue 14 §3–§4: the efficiency curves, the claims' commands, statistics and resumption."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from odeattn.experiments import _runs
from odeattn.experiments.__main__ import main
from odeattn.experiments._efficiency import EffConfig, curves, hypervolume
from odeattn.experiments._registry import CLAIMS
from odeattn.experiments._stats import mean_ci


def test_hypervolume_equals_the_area_by_hand():
    # (acc, cost) points; reference acc 0, cost 10: staircase 0.5·(4−2) + 0.8·(10−4) = 5.8
    assert hypervolume([(0.5, 2.0), (0.8, 4.0)], (0.0, 10.0)) == pytest.approx(5.8)
    # a dominated point adds nothing; a point outside the box is ignored
    assert hypervolume([(0.5, 2.0), (0.8, 4.0), (0.4, 5.0), (0.9, 11.0)], (0.0, 10.0)) == 5.8
    assert hypervolume([], (0.0, 10.0)) == 0.0


def test_curves_are_best_so_far_per_seed_and_nan_before_the_first():
    ev = [[{"t": 1.0, "acc": 0.5, "params": 100}, {"t": 3.0, "acc": 0.4, "params": 10}]]
    c = curves(ev, seconds=4.0, ref_cost=3.0, n=5)  # t = 0, 1, 2, 3, 4
    assert math.isnan(c["best"][0, 0])
    assert c["best"][0, 1:].tolist() == [0.5, 0.5, 0.5, 0.5]
    assert c["hv"][0, 1] == pytest.approx(0.5 * (3.0 - 2.0))
    assert c["hv"][0, 3] == pytest.approx(0.4 * (2.0 - 1.0) + 0.5 * (3.0 - 2.0))


def test_list_names_the_six_claims(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CLAIMS) and len(CLAIMS) == 6


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "lth4as"], "did you mean 'lth4sa'?"),
        (["run", "lth4sa", "--jobs", "0"], "`--jobs` must be >= 1"),
        (
            [
                "benchmark",
                "--space",
                "SPACE",
                "--n",
                "2",
                "--epochs",
                "1",
                "--seeds",
                "2",
                "--jobs",
                "0",
            ],
            "`--jobs` must be >= 1",
        ),
        (["efficiency", "--space", "x.yaml", "--seconds", "5"], "`space` must be an existing"),
        (["efficiency", "--space", "SPACE", "--seconds", "5", "--arms", "none,snipp"], "'snip'"),
        (["efficiency", "--space", "SPACE", "--seconds", "0"], "must be > 0"),
        (["efficiency", "--space", "SPACE", "--seconds", "5", "--studies", "multy"], "'multi'"),
        (["efficiency", "--space", "SPACE", "--seconds", "5", "--model", "resnet_56"], "resnet56"),
        (
            ["efficiency", "--space", "SPACE", "--seconds", "5", "--retrain-seeds", "100,1o1"],
            "`--retrain-seeds` must be comma-separated integers",
        ),
        (
            ["efficiency", "--space", "SPACE", "--seconds", "5", "--retrain-seeds", "100,100"],
            "be distinct seeds >= 0",
        ),
        (
            ["efficiency", "--space", "SPACE", "--seconds", "5", "--data", "cifar10"],
            "$ODEATTN_DATA",
        ),
        (
            [
                "benchmark",
                "--space",
                "SPACE",
                "--n",
                "2",
                "--epochs",
                "1",
                "--seeds",
                "2",
                "--data",
                "cifar10",
            ],
            "data_batch_1",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tiny_space, tmp_path, capsys, monkeypatch, argv, message
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ODEATTN_DATA", str(tmp_path / "no_data"))
    space = tiny_space
    assert main([a.replace("SPACE", str(space)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]  # nothing written


def test_efficiency_config_accepts_every_proxy_as_an_arm(tiny_space, tmp_path):
    space = tiny_space
    cfg = EffConfig(str(space), 5.0, arms=("none", "tns", "random", "naswot", "params"))
    assert cfg.seeds == 5


def _fake_train(kwargs, seed, epochs, **setting):
    """A deterministic stand-in for training: accuracy from the variant and seed."""
    rng = np.random.default_rng(seed)
    bonus = {"stepnet": 0.02, "se": 0.0}.get(kwargs.get("adaptor"), -0.01)
    if kwargs.get("sharing") == "stage":
        bonus += (
            0.05
            if "placement" not in kwargs
            else (0.05 if "1100" in kwargs["placement"] else -0.05)
        )
    grid = rng.uniform(0, 0.2, size=(11, 11)).tolist()
    n = kwargs.get("blocks", [3, 3, 3])
    return {
        "val_accuracy": 0.9 + bonus + 0.001 * rng.normal(),
        "params": 1000,
        "adaptor_params": 100 if kwargs.get("sharing") == "stage" else 800,
        "measured_blocks": {str(s): b - 1 for s, b in enumerate(n)},
        "tns_step": 0.1 + bonus + 0.001 * rng.normal(),
        "tns_fd": 0.1 + 0.001 * rng.normal(),
        "p_hat_step": grid,
        "p_hat_fd": grid,
        "gates": [{"name": f"b{i}", "stage": 0, "first": i == 0, "gate": 0.5} for i in range(3)],
    }


def _verdicts(res: dict) -> dict[str, str]:
    return {t["id"]: t["verdict"] for t in res["tests"]}


def test_claims_judge_paired_differences_and_resume_from_the_cache(tmp_path, monkeypatch):
    calls, threads = [], []

    def fake(*a, **k):
        calls.append(a)
        threads.append(torch.get_num_threads())
        return _fake_train(*a, **k)

    monkeypatch.setattr(_runs, "train_variant", fake)
    before = torch.get_num_threads()
    assert main(["run", "stepnet_vs_se", "--quick", "--out", str(tmp_path)]) == 0
    assert set(threads) == {1} and torch.get_num_threads() == before  # pinned, then restored
    res = json.loads((tmp_path / "stepnet_vs_se" / "result.json").read_text())
    acc = res["accuracy"]
    diffs = [a - b for a, b in zip(acc["stepnet"], acc["se"], strict=True)]
    t = res["tests"][0]
    assert len(diffs) == 3 and [t["estimate"], t["lo"], t["hi"]] == pytest.approx(
        list(mean_ci(diffs))
    )
    assert res["verdict"] == "held" and (tmp_path / "stepnet_vs_se" / "stepnet_vs_se.png").is_file()
    assert all(c[0]["blocks"] == [8, 8, 8] for c in calls) and len(calls) == 6
    assert res["provenance"]["threads"] == 1 and res["size_name"] == "quick"
    assert main(["run", "attention_tns", "--quick", "--out", str(tmp_path)]) == 0
    assert len(calls) == 12  # plain and ECA are new; SE and StepNet are cached
    at = json.loads((tmp_path / "attention_tns" / "result.json").read_text())
    assert _verdicts(at)["stepnet-plain step"] == "held"  # +0.03 TNS, noise 0.001
    assert _verdicts(at)["se-plain fd"] == "not held" and at["verdict"] == "not held"
    assert at["gates"]["se"][0]["gate"] == 0.5
    assert main(["run", "stiff_blocks", "--quick", "--out", str(tmp_path)]) == 0
    sb = json.loads((tmp_path / "stiff_blocks" / "result.json").read_text())
    grid = np.asarray(_fake_train({}, 0, 1)["p_hat_step"])
    assert sb["share_le_10pct"]["step"]["se"][0] == pytest.approx(float((grid <= 0.1).mean()))
    assert sb["p_hat_00"]["step"]["plain"][0] == grid[0, 0] and len(calls) == 12


def test_dia_sharing_is_paired_per_module_with_the_cut_as_arithmetic(tmp_path, monkeypatch):
    monkeypatch.setattr(_runs, "train_variant", _fake_train)
    assert main(["run", "dia_sharing", "--quick", "--out", str(tmp_path)]) == 0
    dia = json.loads((tmp_path / "dia_sharing" / "result.json").read_text())
    assert set(dia["accuracy"]) == {
        "plain",
        *(f"{m} {s}" for m in ("se", "eca", "srm") for s in ("block", "stage")),
    }
    assert dia["cut"]["se"] == pytest.approx(1 - 100 / 800)
    assert _verdicts(dia)["se stage-block"] == "held" and _verdicts(dia)["se gain"] == "held"
    r164 = dia["arithmetic"]["resnet164"]
    assert r164["blocks"] == [18, 18, 18] and r164["se"]["cut"] == pytest.approx(17 / 18)
    assert dia["arithmetic"]["resnet83"]["eca"]["cut"] == pytest.approx(8 / 9)


def test_lth4sa_names_its_arms_before_the_runs_and_needs_its_premise(tmp_path, monkeypatch):
    monkeypatch.setattr(_runs, "train_variant", _fake_train)
    assert main(["run", "lth4sa", "--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "lth4sa" / "result.json").read_text())
    assert res["placements"]["first"] == "11000000|11000000|11000000"
    assert res["placements"]["last"] == "00000011|00000011|00000011"
    v = _verdicts(res)
    assert v["full-none"] == "held"  # +0.06 > the 1-point margin
    assert v["first-full"] == "held" and v["last-full"] == "not held" and res["verdict"] == "held"
    levels = {t["id"]: t["level"] for t in res["tests"]}
    assert levels["first-full"] == pytest.approx(1 - 0.05 / 6)
    d = [a - b for a, b in zip(res["accuracy"]["first"], res["accuracy"]["full"], strict=True)]
    t = next(t for t in res["tests"] if t["id"] == "first-full")
    assert [t["estimate"], t["lo"], t["hi"]] == pytest.approx(list(mean_ci(d, 1 - 0.05 / 6)))


def test_lth4sa_without_its_premise_is_untestable(tmp_path, monkeypatch):
    def flat(kwargs, seed, epochs, **setting):  # attention changes nothing: no premise
        return _fake_train({**kwargs, "adaptor": "none", "sharing": None}, seed, epochs)

    monkeypatch.setattr(_runs, "train_variant", flat)
    assert main(["run", "lth4sa", "--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "lth4sa" / "result.json").read_text())
    assert res["verdict"] == "untestable here"
    assert {t["verdict"] for t in res["tests"] if t["id"] != "full-none"} == {"untestable here"}


def test_a_shallow_network_makes_the_tns_claims_untestable(tmp_path, monkeypatch):
    def shallow(kwargs, seed, epochs, **setting):
        return _fake_train({**kwargs, "blocks": [3, 3, 3]}, seed, epochs)

    monkeypatch.setattr(_runs, "train_variant", shallow)
    assert main(["run", "attention_tns", "--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "attention_tns" / "result.json").read_text())
    assert res["verdict"] == "untestable here" and set(_verdicts(res).values()) == {
        "untestable here"
    }


@pytest.mark.slow
def test_a_claim_trains_for_real(tmp_path):
    assert main(["run", "stepnet_vs_se", "--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "stepnet_vs_se" / "result.json").read_text())
    assert all(0.0 < a <= 1.0 for a in res["accuracy"]["se"])
    assert res["adaptor_params"]["se"] > 0 and "nan" not in res["summary"]


def _efficiency_argv(space: Path, out: Path, seconds: float) -> list[str]:
    argv = ["efficiency", "--space", str(space), "--seconds", str(seconds), "--seeds", "2"]
    argv += ["--epochs", "1", "--arms", "none,random", "--jobs", "2", "--retrain-seeds", "7,8"]
    return [*argv, "--out", str(out)]


def test_efficiency_runs_both_studies_in_two_processes_and_resumes(tiny_space, tmp_path, capsys):
    space = tiny_space
    out = tmp_path / "eff"
    assert main(_efficiency_argv(space, out, 5)) == 0
    runs = sorted(out.glob("*_seed*.json"))
    assert [f.name.split("_")[0] for f in runs] == ["multi"] * 4 + ["single"] * 4
    stored = {f.name: json.loads(f.read_text()) for f in runs}
    assert all(r["provenance"]["threads"] == 1 for r in stored.values())
    events = {name: r["events"] for name, r in stored.items()}
    assert all(
        ev and all(0 < e["acc"] <= 1 and e["params"] > 0 and "adaptor" in e["arch"] for e in ev)
        for ev in events.values()
    )
    summary = json.loads((out / "summary.json").read_text())
    ref = summary["ref_cost"]
    assert ref == pytest.approx(
        1.1 * math.log10(max(e["params"] for ev in events.values() for e in ev))
    )
    for kind in ("single", "multi"):
        assert (out / f"efficiency_{kind}.png").is_file()
        for i, seed in enumerate((0, 1)):  # best and hypervolume of what was trained by T = 5 s
            ev = events[next(n for n in events if n.startswith(f"{kind}_none_seed{seed}"))]
            ev = [e for e in ev if e["t"] <= 5]
            best = max((e["acc"] for e in ev), default=None)  # None: none by T (loaded CI)
            assert summary[kind]["final"]["none"]["best"][i] == pytest.approx(best)
            pts = [(e["acc"], math.log10(e["params"])) for e in ev]
            assert summary[kind]["final"]["none"]["hv"][i] == pytest.approx(
                hypervolume(pts, (0, ref))
            )
        diff = summary[kind]["paired"]["best"]["random - none"]  # (mean, low, high)
        fin = {a: np.array(f["best"], dtype=float) for a, f in summary[kind]["final"].items()}
        d = fin["random"] - fin["none"]
        assert diff[0] == (
            pytest.approx(float(d[np.isfinite(d)].mean())) if np.isfinite(d).any() else None
        )
    assert "random - none" in capsys.readouterr().out
    _check_retrained(summary["single"], events, out)
    stamps = {f: f.stat().st_mtime_ns for f in runs}
    assert main(_efficiency_argv(space, out, 5)) == 0  # a re-run runs nothing again
    assert {f: f.stat().st_mtime_ns for f in runs} == stamps


def _check_retrained(single: dict, events: dict[str, list[dict]], out: Path) -> None:
    """Each single run's best by T, retrained with seeds 7 and 8: the mean of the two trainings."""
    records = [json.loads(f.read_text()) for f in (out / "standalone").glob("*.json")]
    for arm in ("none", "random"):
        for i, seed in enumerate((0, 1)):
            ev = events[next(n for n in events if n.startswith(f"single_{arm}_seed{seed}"))]
            ev = [e for e in ev if e["t"] <= 5]
            if not ev:  # nothing trained by T (a loaded CI): nothing to retrain
                assert math.isnan(single["retrained"][arm][i])
                continue
            best = max(ev, key=lambda e: e["acc"])["arch"]
            accs = {r["seed"]: r["val_accuracy"] for r in records if r["arch"] == best}
            assert set(accs) == {7, 8} and all(r["provenance"]["threads"] == 1 for r in records)
            assert single["retrained"][arm][i] == pytest.approx((accs[7] + accs[8]) / 2)
    d = np.array(single["retrained"]["random"]) - np.array(single["retrained"]["none"])
    if np.isfinite(d).all():
        assert single["paired"]["retrained"]["random - none"][0] == pytest.approx(d.mean())
    assert (out / "efficiency_retrained.png").is_file()


def _children(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(k) for k in kids]


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_stops_the_efficiency_workers_and_stores_no_partial_run(tiny_space, tmp_path):
    space = tiny_space
    out = tmp_path / "eff"
    cmd = [sys.executable, "-m", "odeattn.experiments", *_efficiency_argv(space, out, 600)]
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, text=True, env=os.environ | {"MPLBACKEND": "Agg"}
    )
    deadline = time.monotonic() + 60
    while len(workers := _children(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)  # the pool's 2 workers (and spawn's resource tracker)
    time.sleep(5)  # the workers are training
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "re-run the same command" in err and "Traceback" not in err
    deadline = time.monotonic() + 10
    while (alive := [w for w in workers if _running(w)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive == [] and list(out.glob("*_seed*.json")) == []
