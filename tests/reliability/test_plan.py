"""Issue 18: one source of truth for every setting, and bad input refused before anything is
written — each a real ``python -m odeattn.search`` process (exit 2, one line, no traceback)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import ENV, ROOT, cli, study_file


def _one_line_exit_2(r: subprocess.CompletedProcess, *needles: str) -> str:
    err = r.stderr.strip()
    assert r.returncode == 2, r.stderr[-2000:] + r.stdout[-2000:]
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def _edit(path: Path, **changes: object) -> Path:
    d = yaml.safe_load(path.read_text())
    d.update(changes)
    path.write_text(yaml.safe_dump(d))
    return path


def test_two_sources_of_epochs_are_refused(tmp_path: Path) -> None:
    # row: train.epochs 6 with overrides.epochs 2 (and an objective at epoch 4) used to pass
    # validation and then fail every trial; now it is one line at validation
    f = study_file(tmp_path, n_trials=1, epochs=6)
    _edit(f, train={"recipe": "digits", "epochs": 6, "overrides": {"epochs": 2}})
    r = cli(str(f), "--runs-dir", "runs", cwd=tmp_path)
    _one_line_exit_2(r, "train.overrides", "set `train.epochs`")
    assert not (tmp_path / "runs").exists()


def test_resume_with_other_training_settings_is_refused(tmp_path: Path) -> None:
    # row: the fingerprint covers epochs, recipe, data and measurement, not only the space
    f = study_file(tmp_path, n_trials=1, epochs=1)
    r = cli(str(f), "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    r = cli(
        str(f), "--runs-dir", "runs", "--quiet", "--epochs", "2", "--n-trials", "2", cwd=tmp_path
    )
    _one_line_exit_2(r, "training", "--accept-changed-study")
    url = f"sqlite:///{tmp_path / 'runs/lth4sa/study.db'}"
    assert len(optuna.load_study(study_name="lth4sa", storage=url).trials) == 1  # untouched


@pytest.mark.parametrize(
    ("space", "train", "needles"),
    [
        (  # row: a misspelt model.* target is found at validation, not in the first trial
            {"params": {"placement": {"type": "placement", "target": "model.placment"}}},
            None,
            ("params.placement.target", "did you mean 'placement'"),
        ),
        (  # row: .nan in a search space
            {
                "params": {
                    "lr": {"type": "float", "low": float("nan"), "high": 0.1, "target": "train.lr"}
                }
            },
            None,
            ("params.lr.low", "finite"),
        ),
        (None, {"recipe": "digits", "epochs": 1, "overrides": {"lr": float("nan")}}, ("train",)),
        (None, {"recipe": "digits", "epochs": 1, "overrides": {"lr": float("inf")}}, ("train",)),
    ],
)
def test_bad_values_are_refused_before_anything_is_written(tmp_path, space, train, needles) -> None:
    f = study_file(tmp_path, n_trials=1, epochs=1)
    if space is not None:
        sp = tmp_path / "space.yaml"
        sp.write_text(yaml.safe_dump(space))
        _edit(f, search_space=str(sp))
    if train is not None:
        _edit(f, train=train)
    r = cli(str(f), "--runs-dir", "runs", cwd=tmp_path)
    _one_line_exit_2(r, *needles)
    assert not (tmp_path / "runs").exists()


def test_a_tns_search_on_shallow_stages_is_refused(tmp_path: Path) -> None:
    # row (issue 21): TNS on 3 blocks a stage (2 measured) is a constant of the depth; the
    # search used to print one warning line and run anyway
    f = study_file(tmp_path, n_trials=1, epochs=1)
    d = yaml.safe_load(f.read_text())
    _edit(f, model={**d["model"], "kwargs": {**d["model"]["kwargs"], "blocks": [3, 3, 3]}})
    r = cli(str(f), "--runs-dir", "runs", cwd=tmp_path)
    err = _one_line_exit_2(r, "objectives[1]", "blocks: [4, 4, 4]", "drop the tns objective")
    assert err.startswith(f"error: {f.resolve()}: ") and "{0: 2, 1: 2, 2: 2}" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("name: ..\n", ("name", "must not start with '.'")),  # row: '..' wrote into the parent
        ("name: .\n", ("name", "must not start with '.'")),
        ("name: lth4sa\nname: other\n", ("appears twice",)),  # row: duplicate keys
        ("budjet: {n_trials: 1}\n", ("budjet", "did you mean 'budget'")),  # row: misspelt key
    ],
)
def test_file_level_mistakes_are_one_line(tmp_path: Path, text: str, needles) -> None:
    base = yaml.safe_load(study_file(tmp_path, n_trials=1, epochs=1).read_text())
    extra = yaml.safe_load(text.splitlines()[0])
    base.pop("budget") if "budjet" in text else None
    base = {k: v for k, v in base.items() if k not in extra}
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(base) + text)
    r = cli(str(f), "--runs-dir", str(tmp_path / "sub" / "runs"), cwd=tmp_path)
    _one_line_exit_2(r, *needles)
    assert not (tmp_path / "sub").exists() and not (tmp_path / "lth4sa").exists()


def test_an_alias_bomb_is_refused_at_once_with_a_short_line(tmp_path: Path) -> None:
    # row: a 1 KB alias bomb hung for minutes; a 6-level one printed a 5.5 MB line
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    f = tmp_path / "bomb.yaml"
    f.write_text("name: bomb\n" + "\n".join(lines) + "\nmodel: *i\n")
    t0 = time.monotonic()
    r = cli(str(f), cwd=tmp_path)
    err = _one_line_exit_2(r, "aliases")
    assert time.monotonic() - t0 < 60 and len(err) < 400


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--epochs", "0"), ("--workers", "0"), ("--n-trials", "0"), ("--threads", "0")],
)
def test_a_bad_flag_is_blamed_on_the_flag(tmp_path: Path, flag: str, value: str) -> None:
    f = study_file(tmp_path, n_trials=1, epochs=1)
    r = cli(str(f), flag, value, "--runs-dir", "runs", cwd=tmp_path)
    _one_line_exit_2(r, f"{flag} must be >= 1, but got {flag} {value}")
    assert str(f) not in r.stderr and not (tmp_path / "runs").exists()


def test_help_and_schema_errors_do_not_import_torch(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nbudjet: 1\n")
    for args in (["--help"], [str(f)]):
        r = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "odeattn.search", *args],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        imported = [ln.rsplit("|", 1)[-1].strip() for ln in r.stderr.splitlines() if "|" in ln]
        assert "torch" not in imported, args
        assert r.returncode == (0 if args == ["--help"] else 2)


@pytest.mark.parametrize("value", ["", "abc", "0", "-1"])
def test_a_bad_odeattn_threads_is_one_line_before_anything(tmp_path: Path, value: str) -> None:
    f = study_file(tmp_path, n_trials=1, epochs=1)
    r = cli(str(f), "--runs-dir", "runs", cwd=tmp_path, env={"ODEATTN_THREADS": value})
    _one_line_exit_2(r, "ODEATTN_THREADS must be a whole number >= 1", repr(value))
    assert not (tmp_path / "runs").exists()


def test_the_dry_run_keeps_the_bracketed_paths_of_a_data_message(tmp_path: Path) -> None:
    # row: the dry run said "Looked in  for …" (rich ate "[cifar-10-batches-bin: …]" as markup)
    f = ROOT / "studies" / "cifar10_stepnet.yaml"
    r = cli(
        str(f),
        "--dry-run",
        "--dry-run-configs",
        "1",
        cwd=tmp_path,
        env={"ODEATTN_DATA": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Looked in [" in " ".join(r.stdout.split()), r.stdout[-2000:]
