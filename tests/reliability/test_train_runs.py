"""``python -m odeattn.train`` as real processes: SIGKILLed mid-training and resumed (issue 18 §15),
run again with other settings into the same folder (§18). Embedded digits, a tiny network."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ENV, wait_for

from odeattn.train import load_checkpoint
from odeattn.train.__main__ import main

TINY_ARCH = {
    "name": "digits_resnet",
    "num_classes": 10,
    "in_channels": 1,
    "blocks": [1, 1, 1],
    "widths": [4, 8, 8],
    "stem_width": 4,
}


def _arch(tmp: Path) -> Path:
    path = tmp / "arch.yaml"
    path.write_text(yaml.safe_dump({"model": TINY_ARCH}))
    return path


def _argv(tmp: Path, *extra: str) -> list[str]:
    return ["--arch", str(_arch(tmp)), "--data", "digits", "--no-progress", *extra]


def _cmd(tmp: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "odeattn.train", *_argv(tmp, *args)]


def _train(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cmd(tmp, *args),
        cwd=tmp,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _records(log: Path) -> list[dict]:
    """The log's complete JSON lines (a line being written is skipped)."""
    out = []
    for line in log.read_text().splitlines() if log.exists() else []:
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.slow  # three launches of torch (about 25 s of CPU)
def test_train_sigkilled_mid_training_resumes_with_each_epoch_logged_once(tmp_path):
    out = tmp_path / "run"
    log, ckpt = out / "log.jsonl", out / "checkpoint.pt"
    live = out / f".checkpoint.pt.tmp{os.getpid()}"  # a live writer's file: never touched
    for kill_at, resume in ((2, []), (3, ["--resume"])):
        p = subprocess.Popen(
            _cmd(tmp_path, "--epochs", "5", "--out", str(out), *resume),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:  # the moment epoch `kill_at` is logged: its checkpoint is usually not written yet
            wait_for(
                f"epoch {kill_at} in {log}",
                lambda k=kill_at: any(r.get("epoch") == k for r in _records(log)),
                timeout=240,
                step=0.002,
            )
            p.send_signal(signal.SIGKILL)
        finally:
            p.kill()
            p.wait()
        with log.open("a") as f:  # what a kill in the middle of a log record leaves
            f.write('{"epoch": 9, "train_lo')
        dead = out / f".checkpoint.pt.tmp{p.pid}"  # what a kill during a checkpoint write leaves
        dead.touch()
        live.touch()
    assert load_checkpoint(ckpt)["epoch"] < 5
    r = _train(tmp_path, "--epochs", "5", "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    lines = log.read_text().splitlines()
    records = [json.loads(s) for s in lines]  # every line whole: the torn ones are gone
    assert [r["epoch"] for r in records if not r.get("final")] == [1, 2, 3, 4, 5]
    assert records[-1]["final"] is True and records[-1]["epochs_run"] == 5
    assert sum(bool(r.get("final")) for r in records) == 1
    assert records[:-1] == load_checkpoint(ckpt)["history"]  # the log is the checkpoint's history
    assert sorted(p.name for p in out.glob(".*")) == [live.name]  # stale tmp files removed


def test_other_settings_get_their_own_folder_and_an_explicit_out_is_refused(tmp_path):
    first = tmp_path / "runs/train/digits_resnet-digits"  # the default folder
    assert main(_argv(tmp_path, "--epochs", "2", "--out", str(first))) == 0
    kept = _files(first)
    r = _train(tmp_path, "--epochs", "1")  # other settings, default folder
    assert r.returncode == 0, r.stderr
    second = first.with_name(f"{first.name}-2")
    assert yaml.safe_load((second / "model.yaml").read_text())["train"]["epochs"] == 1
    assert _files(first) == kept  # the finished run is untouched
    r = _train(tmp_path, "--epochs", "1", "--out", str(first))  # other settings, explicit --out
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"--out {first} holds another run (train.epochs=2 there, 1 here" in r.stderr
    assert "use another --out" in r.stderr and "Traceback" not in r.stderr
    assert _files(first) == kept
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name, second.name]


def test_the_same_finished_run_again_is_finished_not_retrained(tmp_path, capsys):
    first = tmp_path / "runs/train/digits_resnet-digits"
    assert main(_argv(tmp_path, "--epochs", "2", "--out", str(first))) == 0
    kept = _files(first)
    final = json.loads((first / "log.jsonl").read_text().splitlines()[-1])
    r = _train(tmp_path, "--epochs", "2")  # the same settings, default folder
    assert r.returncode == 0, r.stderr
    assert "digits_resnet-digits holds this run, finished (2 epochs): nothing to do" in r.stdout
    assert f"test top-1 {100 * final['test_accuracy']:.2f}%" in r.stdout
    assert _files(first) == kept
    capsys.readouterr()
    assert main(_argv(tmp_path, "--epochs", "2", "--out", str(first), "--resume")) == 0
    assert f"{first} holds this run, finished (2 epochs)" in capsys.readouterr().out
    assert _files(first) == kept
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no -2 folder
