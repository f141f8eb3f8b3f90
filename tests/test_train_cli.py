"""python -m odeattn.train: log lines, checkpoint, --arch YAML, --resume, one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from odeattn.train import __main__ as cli_main
from odeattn.train import load_checkpoint
from odeattn.train.__main__ import main

TINY = ["--data", "synthetic", "--set", "device=cpu", "--no-progress"]
SMALL_ARCH = {
    "name": "digits_resnet",
    "num_classes": 10,
    "in_channels": 1,
    "blocks": [1, 1, 1],
    "widths": [4, 8, 8],
    "stem_width": 4,
}


def _lines(path):
    return [json.loads(s) for s in path.read_text().splitlines()]


def test_model_run_writes_log_checkpoint_and_arch(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "--arch",
            str(_arch_file(tmp_path, {"model": SMALL_ARCH})),
            *TINY,
            "--epochs",
            "2",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    stdout = capsys.readouterr().out
    assert (
        "epoch   1/2" in stdout
        and "img/s" in stdout
        and "top-1" in stdout
        and "top-5" not in stdout
    )
    log = _lines(out / "log.jsonl")
    assert [r.get("epoch") for r in log] == [1, 2, 2] and log[-1]["final"] is True
    assert "test_accuracy" in log[-1] and 0.0 <= log[-1]["test_accuracy"] <= 1.0
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["epoch"] == 2 and ck["architecture"]["blocks"] == [1, 1, 1]
    doc = yaml.safe_load((out / "model.yaml").read_text())
    assert doc["model"]["widths"] == [4, 8, 8] and doc["train"]["recipe"] == "digits"
    assert doc["train"]["epochs"] == 2 and doc["data"]["name"] == "synthetic"


def _arch_file(tmp_path, doc):
    p = tmp_path / "arch.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def test_arch_file_train_section_and_an_interrupted_run_resumes_with_each_epoch_once(
    tmp_path, monkeypatch, capsys
):
    doc = {
        "model": SMALL_ARCH,
        "train": {"recipe": "digits", "epochs": 3, "lr": 0.05},
        "data": {"name": "synthetic", "val_fraction": 0.2},
        "search": {"study": "ignored"},
    }
    arch, out = _arch_file(tmp_path, doc), tmp_path / "run"
    argv = ["--arch", str(arch), "--no-progress", "--set", "device=cpu", "--out", str(out)]
    printed = cli_main._line

    def ctrl_c_at_epoch_2(m, epochs):  # after epoch 2's log record, before its checkpoint
        if m["epoch"] == 2:
            raise KeyboardInterrupt
        return printed(m, epochs)

    monkeypatch.setattr(cli_main, "_line", ctrl_c_at_epoch_2)
    assert main(argv) == 130
    assert "--resume" in capsys.readouterr().err
    monkeypatch.setattr(cli_main, "_line", printed)
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["config"]["lr"] == 0.05 and ck["data"]["sizes"]["val"] > 0
    assert ck["epoch"] == 1 and [r["epoch"] for r in _lines(out / "log.jsonl")] == [1, 2]
    assert main(argv) == 2  # the same run, stopped: only --resume continues it
    assert "add --resume" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    log = _lines(out / "log.jsonl")
    assert [r["epoch"] for r in log] == [1, 2, 3, 3] and log[-1]["final"] is True
    assert log[0] == ck["history"][0]  # epoch 1 as the checkpoint holds it
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 3


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (
            ["--model", "digits_resnt", "--data", "digits"],
            r"unknown model 'digits_resnt'.*did you mean 'digits_resnet'",
        ),
        (["--model", "digits_resnet", "--data", "cifar11"], r"unknown dataset 'cifar11'"),
        (["--model", "digits_resnet", "--recipe", "nope"], r"unknown recipe 'nope'"),
        (
            ["--model", "digits_resnet", "--set", "lrr=1"],
            r"unknown training option 'lrr'.*did you mean 'lr'",
        ),
        (["--model", "digits_resnet", "--epochs", "0"], r"`epochs` must be a positive int"),
        (
            ["--model", "digits_resnet", "--set", "lr=.nan"],
            r"`lr` must be a finite .* lr=nan; e\.g\.",
        ),
        (
            ["--model", "digits_resnet", "--lr", "0"],
            r"`lr` must be a finite number > 0, but got lr=0",
        ),
        (["--model", "digits_resnet", "--set", "momentum=1"], r"`momentum` must be in \[0, 1\)"),
        (["--arch", "/nonexistent.yaml"], r"--arch: file '/nonexistent.yaml' does not exist"),
        (["--data", "digits"], r"one of the arguments --model --arch is required"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, pattern, capsys, tmp_path):
    try:
        rc = main([*argv, "--out", str(tmp_path / "o"), "--no-progress"])
    except SystemExit as e:  # argparse errors
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert re.search(pattern, err), err


def test_missing_dataset_files_and_bad_yaml(tmp_path, capsys):
    assert (
        main(["--model", "resnet20", "--data", "cifar10", "--root", str(tmp_path), "--no-progress"])
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "data_batch_1.bin" in err and "cs.toronto.edu" in err and len(err.strip().splitlines()) == 1
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    assert main(["--arch", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    bad.write_text("train: {lr: 0.1}")
    assert main(["--arch", str(bad)]) == 2
    assert "`model:` mapping" in capsys.readouterr().err


def test_python_dash_m_bad_input_has_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "odeattn.train",
            "--model",
            "nosuchmodel",
            "--data",
            "digits",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.startswith("error: unknown model 'nosuchmodel'")


def _tiny_run(out, model="digits_resnet"):
    return main(["--model", model, *TINY, "--epochs", "1", "--out", str(out)])


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b"this is not a checkpoint",  # garbage
        lambda b: b[: len(b) // 2],  # truncated (an interrupted copy)
        lambda b: b"",  # empty
    ],
    ids=["garbage", "truncated", "empty"],
)
def test_resume_from_a_broken_checkpoint_is_one_line_and_writes_nothing(tmp_path, capsys, damage):
    out = tmp_path / "run"
    assert _tiny_run(out) == 0
    ck = out / "checkpoint.pt"
    ck.write_bytes(damage(ck.read_bytes()))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    rc = main(["--model", "digits_resnet", *TINY, "--epochs", "1", "--out", str(out), "--resume"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: --resume: {ck} is not a readable odeattn checkpoint"), err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written


def test_resume_with_another_model_is_refused_before_model_yaml_changes(tmp_path, capsys):
    out = tmp_path / "run"
    assert _tiny_run(out) == 0
    before = (out / "model.yaml").read_text()
    capsys.readouterr()
    rc = main(["--model", "resnet20", *TINY, "--epochs", "1", "--out", str(out), "--resume"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "holds another run (model." in err and "Traceback" not in err
    assert (out / "model.yaml").read_text() == before


def test_a_run_never_writes_over_another_runs_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    arch = dict(SMALL_ARCH)
    a = _arch_file(tmp_path, {"model": arch, "search": {"study": "lth4sa", "trial": 3}})
    argv = ["--arch", str(a), *TINY, "--epochs", "1"]
    assert main(argv) == 0
    assert "ignoring" not in capsys.readouterr().err  # an export's `search:` key is known
    first = tmp_path / "runs/train/digits_resnet-synthetic"
    kept = (first / "model.yaml").read_text()
    _arch_file(tmp_path, {"model": {**arch, "widths": [4, 8, 16]}})  # another architecture
    assert main(argv) == 0
    assert (first / "model.yaml").read_text() == kept  # the first run's folder is untouched
    second = yaml.safe_load(
        (tmp_path / "runs/train/digits_resnet-synthetic-2/model.yaml").read_text()
    )
    assert second["model"]["widths"] == [4, 8, 16]
    capsys.readouterr()
    assert main([*argv, "--out", str(first)]) == 2  # explicit: refused, one line
    assert (
        "holds another run (model.widths=[4, 8, 8] there, [4, 8, 16] here"
        in capsys.readouterr().err
    )
