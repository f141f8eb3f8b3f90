"""The GPU check cannot rot: ``gpu_check.sh --cpu-smoke`` runs every step once, tiny, on the CPU,
and its JSON holds every step with finite numbers; usage errors are one line and write nothing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import _gpu_run  # noqa: E402
from _gpu_report import PAPER, paper_scale  # noqa: E402
from _gpu_steps import MODELS, STEPS  # noqa: E402


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _check(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)  # as from a plain checkout: the script finds its own tree
    return subprocess.run(
        ["bash", str(ROOT / "benchmarks/gpu_check.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[dict, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    proc = _check("--cpu-smoke", "--out", str(out), "--deadline", "200")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc


def _numbers(obj, where: str = ""):
    """Every number in a JSON value, with its path (bools are not numbers here)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{where}[{i}]")
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        yield where, obj


def test_smoke_report_has_the_runs_parts_and_no_failure(smoke):
    rep, proc = smoke
    assert rep["mode"] == "cpu-smoke" and rep["device"] == rep["results"]["env"]["device"]
    assert rep["results"]["env"]["device_type"] == "cpu"
    assert rep["results"]["env"]["odeattn"] == str(ROOT / "odeattn")  # this tree's, not installed
    assert rep["tests"]["status"] == "ok" and rep["tests"]["failed"] == 0
    assert rep["tests"]["skipped"] > 0 and rep["tests"]["passed"] == 0  # no CUDA: all skipped
    assert rep["skipped"] == [] and rep["missing_modules"] == {}
    assert len(rep["source"]["tree_sha256"]) == 64 and rep["wall_s"] < rep["deadline_s"]
    assert "GPU check on" in proc.stdout and "CIFAR-10 ResNet-164 epoch" in proc.stdout


@pytest.mark.parametrize("step", list(STEPS))
def test_every_step_ran_and_reported_finite_numbers(smoke, step):
    rep, _ = smoke
    assert rep["steps"][step]["status"] == "ok", rep["steps"][step]
    assert 0 < rep["steps"][step]["seconds"] <= rep["steps"][step]["limit_s"]
    numbers = list(_numbers(rep["results"][step]))
    assert numbers, f"{step} reported no numbers"
    bad = [(w, v) for w, v in numbers if not math.isfinite(v)]
    assert not bad, bad


def test_summary_keys_and_values(smoke):
    rep, _ = smoke
    s = rep["summary"]
    rows = {(r["model"], r["compile"]) for r in s["throughput"]}
    assert rows == {(m, c) for m in MODELS for c in (False, True)}
    for r in s["throughput"]:
        assert r["images_per_s"] > 0 and r["step_ms"] > 0 and 0 < r["data_share"] < 1
        assert r["images_per_s"] == pytest.approx(4 / r["step_ms"] * 1e3)  # batch 4
    train = rep["results"]["train_resnet164"]
    assert train["batch"] == 4 and train["bf16"] and train["channels_last"]
    assert rep["results"]["compile_resnet164"]["compile_backend"] == "eager"
    assert set(s["nsi_ratio"]) == {"fp32", "bf16"} and all(v > 0 for v in s["nsi_ratio"].values())
    measured = [r for r in s["odeint"] if not r["skipped"]]
    assert {(r["method"], r["mode"]) for r in measured} >= {
        ("dopri5", "fwd"),
        ("dopri5", "fwd+bwd"),
    }
    assert all(r["ratio"] > 0 for r in measured)
    epoch = rep["results"]["epoch_cifar10"]
    assert (epoch["train_images"], epoch["val_images"]) == (90, 10)  # 100 images, 10 % held out
    assert [r["experiment"] for r in s["paper_scale"]] == [p[0] for p in PAPER]
    assert s["epoch_s"] == epoch["epoch_s"] > 0


def test_paper_scale_hours_are_runs_times_epochs_times_the_scaled_epoch():
    out = paper_scale(20.0, {"resnet164": 1000.0, "se": 800.0, "stepnet": 500.0})
    assert out["epoch_s_per_model"] == {"resnet164": 20.0, "se": 25.0, "stepnet": 40.0, "dia": 20.0}
    claims, lth, dia, tns = out["paper_scale"]
    assert claims["projected_hours"] == pytest.approx(3 * 164 * (20 + 25 + 40) / 3600)
    assert claims["basis"] == "measured" and dia["basis"].startswith("ResNet-164 epoch")
    assert lth["projected_hours"] == pytest.approx(6 * 164 * 25 / 3600)
    assert tns["projected_hours"] == pytest.approx(48 * 30 * 20 / 3600)
    assert out["efficiency_15_epoch_trials_per_2h_study"] == pytest.approx(24.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--deadline", "5"], "`--deadline` must be in [30, 3600]"),
        (["--cpu-smoke", "--steps", "odient"], "did you mean 'odeint'?"),
        pytest.param(
            [],
            "no CUDA device here; run it on a GPU machine, or with --cpu-smoke",
            marks=pytest.mark.skipif(_has_cuda(), reason="this machine has CUDA"),
        ),
    ],
)
def test_usage_errors_are_one_line_exit_2_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "r.json"
    proc = _check(*args, "--out", str(out), timeout=60)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_step_over_its_limit_is_killed_and_a_fresh_worker_runs_the_rest(tmp_path, monkeypatch):
    monkeypatch.setitem(_gpu_run.LIMIT_S, "train", (0.05, 0.05))
    steps = ["env", "train_resnet164", "nsi_overhead"]
    done = _gpu_run.run_steps(steps, "cpu-smoke", time.monotonic() + 120, tmp_path)
    assert [done[s]["status"] for s in steps] == ["ok", "timed_out", "ok"], done
    assert done["train_resnet164"]["reason"] == "over its 0.05 s limit"
    assert (tmp_path / "plan1.json").is_file()  # the second worker's plan
    assert json.loads((tmp_path / "plan1.json").read_text())["steps"] == ["nsi_overhead"]
