"""Issue 18, rows: a set-up failure ends a search only when the study is wrong.

* one configuration the model refuses (or out of memory in its FLOPs pass) is that trial's
  failure: FAIL, counted, the search goes on (was: the whole search ended "fix the study file");
* a failure of the study itself in ``--workers N`` processes (its data vanished after the
  parent checked it) is one line and exit 2 — no traceback from any worker, no restarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from conftest import ENV, ROOT, study_file
from optuna.trial import TrialState

from odeattn.search.__main__ import main
from odeattn.search.trial import _objective


def test_a_configuration_the_model_refuses_fails_alone(tmp_path: Path, monkeypatch) -> None:
    f = study_file(tmp_path, n_trials=3, epochs=1, runs_dir=str(tmp_path / "runs"))
    real, calls = _objective.create_model, []

    def refuse_the_first(name: str, **kw: Any) -> Any:
        calls.append(kw.get("placement"))
        if len(calls) == 1:
            raise ValueError("placement '111|000|101' needs an adaptor in stage 2")
        return real(name, **kw)

    monkeypatch.setattr(_objective, "create_model", refuse_the_first)
    monkeypatch.setenv("ODEATTN_THREADS", "1")
    assert main([str(f), "--quiet"]) == 0
    s = optuna.load_study(study_name="lth4sa", storage=f"sqlite:///{tmp_path}/runs/lth4sa/study.db")
    states = [t.state for t in s.trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]  # 3 counted
    err = s.trials[0].user_attrs["error"]
    assert err.startswith("ConfigurationRefused: this configuration cannot be built (ValueError")
    assert "odeattn_setup" not in s.trials[0].user_attrs  # counted: the sampler learns from it


def _idx(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def _mnist(d: Path, n_train: int = 120, n_test: int = 30) -> None:
    rng = np.random.default_rng(0)
    d.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        (d / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(x))
        (d / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(y))


@pytest.mark.slow
def test_workers_that_cannot_load_the_data_are_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data" / "mnist"
    _mnist(data)
    f = study_file(tmp_path, n_trials=4, epochs=1, workers=2)
    doc = yaml.safe_load(f.read_text())
    doc["data"] = {"name": "mnist", "root": str(data), "val_fraction": 0.3}
    doc["measure"] = {"samples": 32, "batch": 16}
    f.write_text(yaml.safe_dump(doc))
    p = subprocess.Popen(
        [sys.executable, "-m", "odeattn.search", str(f), "--runs-dir", "runs"],
        cwd=tmp_path,
        env=ENV | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    for line in p.stdout:  # the parent has checked the data and now starts its workers
        if line.startswith("study "):
            for g in data.iterdir():
                g.unlink()  # the data vanish (an unmounted disk) before the workers load it
            break
    _, err = p.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert p.returncode == 2, err[-2000:]
    assert "Traceback" not in err and "exited with status" not in err, err[-3000:]
    assert len(lines) == 1 and "cannot load the data" in lines[0], err
