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

from odeattn.experiments import _claims, _runs
from odeattn.experiments.__main__ import main
from odeattn.experiments._efficiency import EffConfig, curves, hypervolume
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
    assert all(name in out for name in _claims.CLAIMS) and len(_claims.CLAIMS) == 6


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "lth4as"], "did you mean 'lth4sa'?"),
        (["efficiency", "--space", "x.yaml", "--seconds", "5"], "`space` must be an existing"),
        (["efficiency", "--space", "SPACE", "--seconds", "5", "--arms", "none,snipp"], "'snip'"),
        (["efficiency", "--space", "SPACE", "--seconds", "0"], "must be > 0"),
        (["efficiency", "--space", "SPACE", "--seconds", "5", "--studies", "multy"], "'multi'"),
        (["efficiency", "--space", "SPACE", "--seconds", "5", "--model", "resnet_56"], "resnet56"),
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
    grid = rng.uniform(0, 0.2, size=(11, 11)).tolist()
    return {
        "val_accuracy": 0.9 + bonus + 0.001 * rng.normal(),
        "params": 1000,
        "adaptor_params": 100 if kwargs.get("sharing") != "block" else 800,
        "tns_step": 0.1 + bonus,
        "tns_fd": 0.1,
        "p_hat_step": grid,
        "p_hat_fd": grid,
    }


def test_claims_judge_paired_differences_and_resume_from_the_cache(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        _runs, "train_variant", lambda *a, **k: calls.append(a) or _fake_train(*a, **k)
    )
    assert main(["run", "stepnet_vs_se", "--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "stepnet_vs_se" / "result.json").read_text())
    acc = res["accuracy"]
    diffs = [a - b for a, b in zip(acc["stepnet"], acc["se"], strict=True)]
    assert len(diffs) == 3 and res["differences"]["stepnet-se"] == pytest.approx(
        list(mean_ci(diffs))
    )
    assert res["held"] is True and (tmp_path / "stepnet_vs_se" / "stepnet_vs_se.png").is_file()
    n = len(calls)
    assert n == 6  # 2 variants x 3 seeds
    assert main(["run", "attention_tns", "--quick", "--out", str(tmp_path)]) == 0
    assert len(calls) == n + 3  # only the plain network is new; se and stepnet are cached
    assert main(["run", "dia_sharing", "--quick", "--out", str(tmp_path)]) == 0
    dia = json.loads((tmp_path / "dia_sharing" / "result.json").read_text())
    assert dia["reduction"] == pytest.approx(1 - 100 / 800) and dia["held"] is True
    assert main(["run", "stiff_blocks", "--quick", "--out", str(tmp_path)]) == 0
    sb = json.loads((tmp_path / "stiff_blocks" / "result.json").read_text())
    assert sb["fraction_le_10pct"]["se"][0] == pytest.approx(
        float((np.asarray(_fake_train({"adaptor": "se"}, 0, 1)["p_hat_step"]) <= 0.1).mean())
    )


@pytest.mark.slow
def test_a_claim_trains_for_real(tmp_path):
    assert main(["run", "stepnet_vs_se", "--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "stepnet_vs_se" / "result.json").read_text())
    assert all(0.0 < a <= 1.0 for a in res["accuracy"]["se"])
    assert res["adaptor_params"]["se"] > 0 and "nan" not in res["verdict"]


def _efficiency_argv(space: Path, out: Path, seconds: float) -> list[str]:
    argv = ["efficiency", "--space", str(space), "--seconds", str(seconds), "--seeds", "2"]
    return [*argv, "--epochs", "1", "--arms", "none,random", "--jobs", "2", "--out", str(out)]


def test_efficiency_runs_both_studies_in_two_processes_and_resumes(tiny_space, tmp_path, capsys):
    space = tiny_space
    out = tmp_path / "eff"
    assert main(_efficiency_argv(space, out, 5)) == 0
    runs = sorted(out.glob("*_seed*.json"))
    assert [f.name.split("_")[0] for f in runs] == ["multi"] * 4 + ["single"] * 4
    events = {f.name: json.loads(f.read_text()) for f in runs}
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
    stamps = {f: f.stat().st_mtime_ns for f in runs}
    assert main(_efficiency_argv(space, out, 5)) == 0  # a re-run runs nothing again
    assert {f: f.stat().st_mtime_ns for f in runs} == stamps


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
