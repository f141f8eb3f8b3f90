"""Study / search-space schemas: every shipped file validates; every invalid file is refused with
exit status 2, one line naming the file and the key, and nothing written to storage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from odeattn.search.__main__ import main
from odeattn.study.config._base import ConfigError
from odeattn.study.config._load import load_search_space, load_study

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
SPACES = sorted((ROOT / "search_spaces").glob("*.yaml"))
INVALID = sorted((ROOT / "tests" / "invalid_studies").glob("*.yaml"))


def _expected_key(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path} must start with '# expect: <key>'"
    return first.removeprefix("# expect: ").strip()


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_shipped_studies_validate(path: Path) -> None:
    study = load_study(path)
    assert study.name == path.stem  # runs/<name>/ matches the file name
    space = load_search_space(study)
    assert space.params


def test_every_space_is_used_by_a_study() -> None:
    used = {load_study(p).space_path.resolve() for p in STUDIES}
    assert {p.resolve() for p in SPACES} <= used


def test_corpus_covers_the_issue_list() -> None:
    keys = {_expected_key(p) for p in INVALID}
    for must in (
        "train.epoch",
        "budget.n_trials",
        "model.kwargs.method[1]",
        "params.method.choices[1]",
        "model.kwargs.adaptor",
        "model.name",
        "model.kwargs.placement",
        "search_space",
        "params.lr",
        "pruning",
        "objectives[1]",  # issue 21: TNS / p̂ on too few measured blocks a stage
        "constraints[0]",
        "screen.metric",
    ):
        assert must in keys


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_study_exits_2_with_one_line(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    runs = tmp_path / "runs"
    code = main([str(path), "--runs-dir", str(runs), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    key = _expected_key(path)
    assert f": {key}: " in err, err
    assert path.name in err or "spaces/" in err  # names the file that holds the problem
    assert not runs.exists()  # nothing written: no storage, no artifacts


def test_invalid_study_real_process(tmp_path: Path) -> None:
    """The real command: status 2, exactly one stderr line, no traceback, no storage file."""
    path = ROOT / "tests" / "invalid_studies" / "unknown_model.yaml"
    r = subprocess.run(
        [sys.executable, "-m", "odeattn.search", str(path), "--runs-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.name" in lines[0] and "digits_resnet" in lines[0], r.stderr
    assert not (tmp_path / "r").exists()


def test_error_names_file_key_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text(
        "name: s\nsearch_space: x.yaml\nmodel: {name: digits_resnet}\n"
        "objectives: [{metric: val_accuracy, direction: maximize, at: 0}]\nbudget: {n_trials: 1}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_study(bad)
    assert e.value.file.endswith("s.yaml") and e.value.key == "objectives[0].at"
    assert "\n" not in str(e.value)


def test_overrides_replace_budget_and_keep_the_rest() -> None:
    study = load_study(ROOT / "studies" / "lth4sa.yaml", n_trials=3, runs_dir="/tmp/x")
    assert study.budget.n_trials == 3 and study.runs_dir == "/tmp/x"
    assert study.objective_names == ["val_accuracy", "tns", "attention_blocks"]
    assert study.directions == ["maximize", "maximize", "minimize"]


def test_objective_names_carry_the_measurement_point() -> None:
    study = load_study(ROOT / "studies" / "tns_proxy.yaml")
    assert study.objective_names == ["val_accuracy", "tns@init"]


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.name)
def test_every_search_space_parses_and_samples(path: Path) -> None:
    """Each space file, resolved against the first study that uses it, samples valid configurations."""
    import optuna

    from odeattn.search import decode, resolve_space, sample

    study = next(s for s in map(load_study, STUDIES) if s.space_path.resolve() == path.resolve())
    space = resolve_space(study)
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        t = s.ask()
        d = decode(space, sample(t, space))
        assert set(d.values) <= set(space.config.params)
        s.tell(t, 0.0)
