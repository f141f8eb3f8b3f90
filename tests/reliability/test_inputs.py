"""Rows 9–13, 22, 23 of issue 13: bad storage URLs, a reused study name, Ray settings that
cannot work — each a real ``python -m odeattn.search`` process that exits 2 with one line naming
the fix, having written nothing (or, for a reused name, left the old study as it was)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from conftest import cli, study_file

from odeattn.search.storage._storage_url import StorageURLError, check_storage_url, redact


def _one_line_exit_2(r, *needles: str) -> str:
    err = r.stderr.strip()
    assert r.returncode == 2, r.stderr[-2000:] + r.stdout[-2000:]
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.count(".yaml: ") <= 1, err  # the file named once, not an error wrapped in another
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql//127.0.0.1/x", "did you mean 'postgresql://127.0.0.1/x'"),  # row 11
        ("foo://bar", "unknown database 'foo'"),  # row 10
        ("sqlite://relative.db", "did you mean 'sqlite:///relative.db'"),  # row 10
        ("postgresql://odeattn@127.0.0.1:1/x", "cannot open postgresql+psycopg2://"),  # row 10
        ("mysql://u@127.0.0.1/x", "needs the Python driver 'pymysql'"),  # row 10
    ],
)
def test_bad_storage_url_is_one_line_and_writes_nothing(tmp_path: Path, url, needle) -> None:
    f = study_file(tmp_path, n_trials=1, epochs=1)
    r = cli(str(f), "--storage", url, "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    _one_line_exit_2(r, needle)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "postgresql").exists()


def test_storage_urls_map_to_installed_drivers_and_hide_passwords() -> None:
    # row 9: SQLAlchemy 2.1 maps postgresql:// to psycopg 3; `.[postgres]` installs psycopg2
    pytest.importorskip("psycopg2")
    expected = "psycopg" if __import__("importlib").util.find_spec("psycopg") else "psycopg2"
    got = check_storage_url("postgresql://u:secret@db:5432/optuna")
    assert got == f"postgresql+{expected}://u:secret@db:5432/optuna"
    assert check_storage_url("postgres://u@h/d") == f"postgresql+{expected}://u@h/d"
    assert check_storage_url("postgresql+psycopg2://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert check_storage_url("runs/x/journal.log") == "runs/x/journal.log"
    assert check_storage_url("sqlite:///runs/a.db") == "sqlite:///runs/a.db"
    assert redact("postgresql+psycopg2://u:secret@db:5432/optuna") == (
        "postgresql+psycopg2://u:***@db:5432/optuna"
    )
    for bad in ("", "sqlite:relative.db", "postgresql://u@h", "sqlite+x:/a"):
        with pytest.raises(StorageURLError):
            check_storage_url(bad)


def test_address_without_a_server_storage_is_refused_before_any_file(tmp_path: Path) -> None:
    f = study_file(tmp_path, n_trials=1, epochs=3)  # row 22
    r = cli(
        str(f),
        "--backend",
        "ray",
        "--address",
        "10.0.0.1:6379",
        "--runs-dir",
        "runs",
        "--quiet",
        cwd=tmp_path,
    )
    _one_line_exit_2(r, "needs a server database", "postgresql")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_asha_grace_at_or_past_the_last_epoch_is_refused(tmp_path: Path, extra) -> None:
    f = study_file(  # row 23: the shipped grace period 2 with --epochs 1 or 2
        tmp_path,
        n_trials=1,
        epochs=3,
        backend="ray",
        ray={"scheduler": "asha", "asha": {"grace_period": 2}},
    )
    for epochs in ("1", "2"):
        r = cli(str(f), "--epochs", epochs, "--runs-dir", "runs", "--quiet", *extra, cwd=tmp_path)
        _one_line_exit_2(r, "ray.asha.grace_period", f"below the trial's epochs ({epochs})")
    assert not (tmp_path / "runs").exists()


def _existing(tmp_path: Path, directions: list[str], names: list[str]) -> str:
    url = f"sqlite:///{tmp_path / 'runs' / 'lth4sa' / 'study.db'}"
    (tmp_path / "runs" / "lth4sa").mkdir(parents=True)
    s = optuna.create_study(study_name="lth4sa", storage=url, directions=directions)
    s.set_metric_names(names)
    s.add_trial(optuna.trial.create_trial(values=[1.0] * len(directions)))
    return url


@pytest.mark.parametrize(
    ("directions", "names", "needle"),
    [
        (
            ["maximize", "minimize", "minimize"],
            ["val_accuracy", "tns", "attention_blocks"],
            "has directions ['maximize', 'minimize', 'minimize']",
        ),  # row 13
        (
            ["maximize", "maximize", "minimize"],
            ["val_accuracy", "params", "attention_blocks"],
            "was run with objectives ['val_accuracy', 'params', 'attention_blocks']",
        ),  # row 12
    ],
)
def test_reused_study_name_is_refused(tmp_path: Path, directions, names, needle) -> None:
    url = _existing(tmp_path, directions, names)
    f = study_file(tmp_path, n_trials=2, epochs=1)
    r = cli(str(f), "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    _one_line_exit_2(r, needle, "--study-name")
    assert len(optuna.load_study(study_name="lth4sa", storage=url).trials) == 1  # untouched


def test_reused_study_name_with_another_space_is_refused(tmp_path: Path) -> None:
    url = _existing(
        tmp_path, ["maximize", "maximize", "minimize"], ["val_accuracy", "tns", "attention_blocks"]
    )
    optuna.load_study(study_name="lth4sa", storage=url).set_user_attr("odeattn_plan", "0" * 16)
    f = study_file(tmp_path, n_trials=1, epochs=1)  # row 12: same metrics, other search space
    r = cli(str(f), "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    _one_line_exit_2(r, "another search space", "--accept-changed-study")
    assert len(optuna.load_study(study_name="lth4sa", storage=url).trials) == 1
