"""The proxy benchmark (issue 14 §2): statistics equal scipy, end to end on a tiny space, resume."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from odeattn.experiments import _bench, _cli_bench
from odeattn.experiments._cli_bench import bench_main
from odeattn.experiments._stats import (
    bootstrap_ci,
    fmt_ci,
    kendall,
    mean_ci,
    noise_ceiling,
    partial_spearman,
    spearman,
)


def test_rank_statistics_equal_scipy_and_drop_non_finite_pairs():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=12), rng.normal(size=12)
    assert kendall(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    x2 = np.append(x, [np.nan, np.inf])
    assert kendall(x2, np.append(y, [1.0, 2.0])) == pytest.approx(kendall(x, y))
    assert math.isnan(kendall([1, 1, 1, 1], [1, 2, 3, 4]))  # constant: undefined, not 0
    assert math.isnan(spearman([1, 2], [2, 1]))


def test_partial_spearman_matches_residual_ranks():
    rng = np.random.default_rng(2)
    z = rng.normal(size=40)
    x, y = z + rng.normal(size=40), z + rng.normal(size=40)
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    res = [r - np.polyval(np.polyfit(rz, r, 1), rz) for r in (rx, ry)]
    assert partial_spearman(x, y, z) == pytest.approx(np.corrcoef(*res)[0, 1])
    assert partial_spearman(x, y, z) < spearman(x, y)  # the shared z explained part of it


def test_bootstrap_ci_brackets_the_statistic_and_narrows_with_n():
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    lo, hi = bootstrap_ci((x, y), kendall, n_boot=300)
    assert lo < kendall(x, y) < hi
    lo_s, hi_s = bootstrap_ci((x[:20], y[:20]), kendall, n_boot=300)
    assert hi - lo < hi_s - lo_s


def test_noise_ceiling_mean_ci_and_format():
    a = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert noise_ceiling(a, a) == pytest.approx(1.0)
    assert noise_ceiling(a, a[::-1], a) == pytest.approx((-1 + 1 - 1) / 3)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        noise_ceiling(a)
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert lo < m
    assert (m, hi - m) == (2.0, pytest.approx(stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)))
    assert fmt_ci(math.nan, 0, 1) == "n/a" and "nan" not in fmt_ci(0.5, math.nan, math.nan)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "1"], "`seeds` must be >= 2"),
        (["--n", "0"], "`n` must be >= 1"),
        (["--space", "nope.yaml"], "`space` must be an existing"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny_space, tmp_path, capsys, args, message):
    space = tiny_space
    base = ["benchmark", "--space", str(space), "--n", "2", "--epochs", "1", "--seeds", "2"]
    assert bench_main([*base, *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_space_file_exits_2_before_training(tmp_path, capsys):
    space = tmp_path / "bad.yaml"
    space.write_text("params: {blocks: {type: per_stage, low: 1, hgih: 2}}\n")
    argv = ["benchmark", "--space", str(space), "--n", "2", "--epochs", "1", "--seeds", "2"]
    assert bench_main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "hgih" in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "benchmark.db").exists()


ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "ODEATTN_THREADS": "1", "OMP_NUM_THREADS": "1"}


def test_a_space_the_model_cannot_build_exits_2_before_any_work(tmp_path):
    space = ROOT / "search_spaces/lth4sa_placement.yaml"  # needs --model-kw adaptor=se
    argv = ["benchmark", "--space", str(space), "--n", "2", "--epochs", "1", "--seeds", "2"]
    r = subprocess.run(
        [sys.executable, "-m", "odeattn.proxies", *argv, "--out", str(tmp_path / "o")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(
        f"error: --space {space} samples architectures that --model digits_resnet cannot build "
        "(`placement` selects blocks for an adaptor, but adaptor=None"
    )
    assert r.stderr.rstrip().endswith("--model-kw KEY=VALUE (e.g. --model-kw adaptor=se)")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_progress_lines_reach_a_pipe_while_it_trains(tiny_space, tmp_path):
    argv = ["benchmark", "--space", str(tiny_space), "--n", "2", "--epochs", "1", "--seeds", "2"]
    p = subprocess.Popen(
        [sys.executable, "-m", "odeattn.proxies", *argv, "--out", str(tmp_path / "o")],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = p.stderr.readline()  # blocks until the first network is trained
        running = p.poll() is None  # three more networks to go: it has not ended
    finally:
        p.kill()
        p.communicate()
    assert re.fullmatch(r"trained 1/4 networks, \d+ s elapsed, about \d+ s left\n", first), first
    assert running


def _printed(out: str, proxy: str) -> list[float]:
    line = next(ln for ln in out.splitlines() if re.match(rf"^\W*{re.escape(proxy)}\s", ln))
    return [float(v) for v in re.findall(r"-?\d+\.\d+", line)]


@pytest.mark.slow
def test_benchmark_end_to_end_prints_scipy_values_and_resumes(
    tiny_space, tmp_path, capsys, monkeypatch
):
    space = tiny_space
    out = tmp_path / "bench"
    argv = ["benchmark", "--space", str(space), "--n", "6", "--epochs", "1", "--seeds", "2"]
    argv += ["--out", str(out)]
    assert bench_main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["rows"]
    assert len(rows) == 6 and {f.name for f in out.iterdir()} >= {
        "values.csv",
        "correlations.csv",
        "summary.json",
        "scatter.png",
        "benchmark.db",
    }
    acc = [r["mean_accuracy"] for r in rows]
    assert acc == pytest.approx([(r["acc@seed0"] + r["acc@seed1"]) / 2 for r in rows])
    for name in ("params", "synflow", "grad_norm", "tns@init", "tns@1", "naswot"):
        x = [r[name] for r in rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            tau = stats.kendalltau(x, acc).statistic
            rho = stats.spearmanr(x, acc).statistic
        if math.isnan(tau):  # a constant column: printed as n/a, never nan
            assert "n/a" in next(ln for ln in printed.splitlines() if name in ln)
            continue
        vals = _printed(printed, name)
        assert vals[0] == pytest.approx(tau, abs=0.005) and vals[3] == pytest.approx(rho, abs=0.005)
    ceil = stats.kendalltau([r["acc@seed0"] for r in rows], [r["acc@seed1"] for r in rows])
    assert summary["noise_ceiling"]["tau"] == pytest.approx(ceil.statistic)
    assert "nan" not in printed

    calls = []
    monkeypatch.setattr(_bench, "run_trial", lambda *a, **k: calls.append(a) or {})
    assert bench_main(argv) == 0  # resume: every architecture is complete, nothing retrains
    assert calls == []
    assert json.loads((out / "summary.json").read_text())["rows"] == rows
    assert bench_main([*argv, "--epochs", "2"]) == 2  # other settings, same folder
    assert "epochs" in capsys.readouterr().err


def test_model_kw_must_be_key_equals_value(tiny_space, tmp_path, capsys):
    space = tiny_space
    argv = ["benchmark", "--space", str(space), "--n", "2", "--epochs", "1", "--seeds", "2"]
    assert bench_main([*argv, "--model-kw", "adaptor", "--out", str(tmp_path / "o")]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_interrupt_exits_130_with_the_resume_hint(tiny_space, tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli_bench, "run_benchmark", interrupted)
    space = tiny_space
    argv = ["benchmark", "--space", str(space), "--n", "2", "--epochs", "1", "--seeds", "2"]
    assert bench_main([*argv, "--out", str(tmp_path / "o")]) == 130
    assert "re-run the same command" in capsys.readouterr().err


def test_the_sample_is_the_seeded_draws_and_a_diverged_draw_is_stored_once(
    tiny_space, tmp_path, monkeypatch
):
    """Draw k is the same for any n; a NaN accuracy is stored as FAIL (no row) and not retried."""
    cfg = _bench.BenchConfig(space=str(tiny_space), n=4, epochs=1, seeds=2, out=str(tmp_path))
    space = _bench.resolve_space(_bench.bench_study(cfg))
    four = _bench.draws(cfg, space)
    two = _bench.draws(_bench.BenchConfig(**{**cfg.__dict__, "n": 2}), space)
    assert [p for p, _ in two] == [p for p, _ in four[:2]]
    calls = []

    def fake(c, params):
        calls.append(params)
        value = math.nan if len(calls) == 2 else 0.5 + 0.1 * len(calls)
        return value, {"acc@seed0": value, "acc@seed1": value}

    monkeypatch.setattr(_bench, "evaluate", fake)
    rows = _bench.run_benchmark(cfg)
    assert calls == [p for p, _ in four] and [r["number"] for r in rows] == [0, 2, 3]
    assert [r["arch"] for r in rows] == [four[k][0] for k in (0, 2, 3)]
    assert _bench.run_benchmark(cfg) == rows and len(calls) == 4  # resumed: nothing retrained
