"""Issue 14 §3–§4: the efficiency curves, the claims' commands, statistics and resumption."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from odeattn.experiments import _claims, _runs
from odeattn.experiments.__main__ import main
from odeattn.experiments._efficiency import EffConfig, curves, hypervolume
from odeattn.experiments._stats import mean_ci

TINY = """
description: tiny test space
params:
  blocks: {type: per_stage, low: 2, high: 3}
  adaptor: {type: categorical, choices: [none, se]}
"""


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
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    assert main([a.replace("SPACE", str(space)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_efficiency_config_accepts_every_proxy_as_an_arm(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
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
def test_a_claim_trains_for_real_and_efficiency_runs_end_to_end(tmp_path, capsys):
    assert main(["run", "stepnet_vs_se", "--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "stepnet_vs_se" / "result.json").read_text())
    assert all(0.0 < a <= 1.0 for a in res["accuracy"]["se"])
    assert res["adaptor_params"]["se"] > 0 and "nan" not in res["verdict"]
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    out = tmp_path / "eff"
    argv = ["efficiency", "--space", str(space), "--seconds", "4", "--seeds", "2"]
    argv += ["--epochs", "1", "--arms", "none,random", "--out", str(out)]
    assert main(argv) == 0
    assert (out / "efficiency.png").is_file()
    runs = sorted(out.glob("*.json"))
    assert len(runs) == 4 and all(json.loads(f.read_text()) for f in runs)  # ≥ 1 trained each
    assert "none" in capsys.readouterr().out
