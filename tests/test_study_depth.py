"""Issue 21: a search by TNS or p̂ needs >= 3 measured blocks in every stage (>= 4 blocks: the
first block of a stage is not measured). A study whose model or space can give fewer is refused
at validation — exit 2, one line naming the study file, the key, the smallest blocks per stage
and the fix, nothing written — and every shipped study that searches by TNS is deep enough."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from rich.console import Console

from odeattn.search.__main__ import main
from odeattn.search._run import run_search
from odeattn.stiffness import measured_blocks
from odeattn.study import (
    DEPTH_METRICS,
    METRICS,
    STIFFNESS_METRICS,
    ConfigError,
    check_depth,
    load_study,
    resolve_space,
)
from odeattn.study._depth import depth_keys

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
INVALID = ROOT / "tests" / "invalid_studies"
STUDIES = {p.stem: p for p in sorted((ROOT / "studies").glob("*.yaml"))}


def test_the_depth_metrics_are_the_stage_relative_stiffness_metrics() -> None:
    assert DEPTH_METRICS == ("tns", "p_hat")  # NSI itself is measured per block: any depth
    assert set(DEPTH_METRICS) <= set(STIFFNESS_METRICS) <= set(METRICS)


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        (
            "tns_on_three_blocks",
            (
                ": objectives[1]: `model.kwargs.blocks` must be >= 4 blocks a stage for tns",
                "but got model.kwargs.blocks=[3, 3, 3], which leaves stages "
                "{0: 2, 1: 2, 2: 2} (stage: measured blocks)",
                "use >= 4 blocks a stage, e.g. blocks: [4, 4, 4], or drop the tns objective",
            ),
        ),
        (  # digits_resnet's own default: the model as built, not only model.kwargs
            "tns_default_depth",
            (
                ": objectives[0]: ",
                "model.kwargs.blocks=[3, 3, 3] (digits_resnet's default)",
                "{0: 2, 1: 2, 2: 2}",
            ),
        ),
        (  # the space's smallest depth, not the base model's 8 a stage
            "p_hat_shallow_space",
            (
                ": objectives[1]: `params.blocks.low` must be >= 4 blocks a stage for p_hat",
                "but got params.blocks.low=1 in ",
                "shallow_blocks.yaml, which leaves stages {0: 0, 1: 0, 2: 0}",
                "e.g. low: 4, or drop the p_hat objective",
            ),
        ),
        (
            "p_hat_constraint_shallow",
            (
                ": constraints[0]: ",
                "model.kwargs.blocks=[4, 2, 4], which leaves stages {1: 1}",
                "or drop the p_hat constraint",
            ),
        ),
        ("tns_screen_shallow", (": screen.metric: ", "{0: 2, 1: 2, 2: 2}", "screen by another")),
    ],
)
@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
def test_a_search_by_tns_on_shallow_stages_exits_2_with_one_line(
    name: str, needles: tuple[str, ...], dry: bool, tmp_path: Path, capsys
) -> None:
    path, runs = INVALID / f"{name}.yaml", tmp_path / "runs"
    code = main([str(path), "--runs-dir", str(runs), "--quiet", *(["--dry-run"] if dry else [])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {path.resolve()}: ") and "Traceback" not in err
    for n in needles:
        assert n in err, err
    assert not runs.exists()  # refused before any storage, artifact or data load


def test_run_search_refuses_before_the_storage(tmp_path: Path) -> None:
    """The Python API too (``run_search`` checks before ``prepare_storage``)."""
    study = load_study(INVALID / "tns_on_three_blocks.yaml", runs_dir=str(tmp_path / "runs"))
    with pytest.raises(ConfigError) as e:
        run_search(study, resolve_space(study), console=Console(quiet=True))
    assert e.value.key == "objectives[1]" and "\n" not in str(e.value)
    assert not (tmp_path / "runs").exists()


#: shipped study -> the measured blocks per stage of its base model, as built
MEASURED = {
    "lth4sa": (3, 3, 3),  # blocks: [4, 4, 4]
    "lth4sa_ray": (3, 3, 3),
    "tns_proxy": (3, 3, 3),
    "cifar100_lth4sa": (17, 17, 17),  # resnet164's default: 18 a stage
    "evidence_deep": (2, 2, 2),  # digits_resnet's default; its space's depth (7-9) replaces it
    "rkcnn_digits": (2, 2, 2),  # steps: [3, 3, 3] RK blocks a period
    "lth4sa_supernet": (2, 2, 2),  # 3-3-3, and no TNS objective
    "adaptors_supernet": (2, 2, 2),  # digits_resnet's default; its space's depth is 2-4, no TNS
}


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_the_space_carries_the_measured_blocks_of_the_built_base_model(name: str) -> None:
    space = resolve_space(load_study(STUDIES[name]))
    assert space.measured == MEASURED[name]


def test_the_measured_blocks_are_the_stiffness_count_of_the_model() -> None:
    from odeattn.models import create_model

    study = load_study(INVALID / "p_hat_constraint_shallow.yaml")
    model = create_model("digits_resnet", num_classes=10, **study.model.kwargs)
    assert resolve_space(study).measured == tuple(measured_blocks(model).values()) == (3, 1, 3)


#: shipped study -> the keys at which it reads TNS or p̂ (every other study: none)
READS_DEPTH = {
    "cifar100_lth4sa": ["objectives[1]"],
    "evidence_deep": ["objectives[1]"],
    "evidence_paper": ["objectives[1]"],
    "lth4sa": ["objectives[1]"],
    "lth4sa_ray": ["objectives[1]"],
    "tns_proxy": ["objectives[1]", "screen.metric"],
}


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_shipped_study_that_searches_by_tns_is_deep_enough(name: str) -> None:
    study = load_study(STUDIES[name])
    assert [k for k, _, _ in depth_keys(study)] == READS_DEPTH.get(name, [])
    if name in READS_DEPTH:  # (for the others check_depth reads nothing)
        check_depth(study, resolve_space(study))  # no ConfigError


def _study(tmp_path: Path, depth: dict[str, Any], **model_kw: Any) -> Any:
    """A TNS search on digits_resnet (``model_kw``) over a space whose ``blocks`` is ``depth``."""
    space = {"params": {"adaptor": {"type": "categorical", "choices": ["none", "se"]}}}
    space["params"]["blocks"] = depth
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    doc = {
        "name": "depth",
        "search_space": "space.yaml",
        "model": {"name": "digits_resnet", "kwargs": model_kw},
        "objectives": [{"metric": "tns", "direction": "maximize"}],
        "budget": {"n_trials": 1},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    return load_study(tmp_path / "s.yaml")


def test_a_depth_range_of_4_or_more_replaces_a_shallow_base_model(tmp_path: Path) -> None:
    study = _study(tmp_path, {"type": "per_stage", "low": 4, "high": 6}, blocks=[3, 3, 3])
    check_depth(study, resolve_space(study))  # every trial has 4-6 blocks a stage


@pytest.mark.parametrize(
    ("depth", "needles"),
    [
        (  # smallest choice 2: one measured block in every stage
            {"type": "per_stage", "choices": [2, 6]},
            ("params.blocks.choices=[2, 6] in ", "{0: 1, 1: 1, 2: 1}", "choices of 4 or more"),
        ),
        (  # 3 to 6: 3 is in the range
            {"type": "per_stage", "low": 3, "high": 6},
            ("params.blocks.low=3", "{0: 2, 1: 2, 2: 2}"),
        ),
    ],
)
def test_a_space_that_can_give_a_shallow_stage_is_refused_naming_the_value(
    tmp_path: Path, depth: dict[str, Any], needles: tuple[str, ...]
) -> None:
    study = _study(tmp_path, depth, blocks=[3, 3, 3])
    with pytest.raises(ConfigError) as e:
        check_depth(study, resolve_space(study))
    assert e.value.key == "objectives[0]" and "\n" not in str(e.value)
    for n in needles:
        assert n in str(e.value), str(e.value)


def test_nsi_alone_is_measured_at_any_depth(tmp_path: Path) -> None:
    """NSI is measured per block, so nsi_mean needs no stage mean and no minimum depth."""
    study = _study(tmp_path, {"type": "per_stage", "low": 1, "high": 2})
    study = study.model_copy(
        update={"objectives": [study.objectives[0].model_copy(update={"metric": "nsi_mean"})]}
    )
    assert depth_keys(study) == []
    check_depth(study, resolve_space(study))


def test_an_rkcnn_study_is_told_to_raise_steps_not_blocks(tmp_path: Path) -> None:
    """RKCNN's depth keyword is ``steps``: the refusal names the key the user can change."""
    doc = yaml.safe_load((ROOT / "studies" / "rkcnn_digits.yaml").read_text())
    doc["search_space"] = str((ROOT / "search_spaces" / "rkcnn.yaml").resolve())
    doc["objectives"] = [{"metric": "tns", "direction": "maximize"}]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    study = load_study(tmp_path / "s.yaml")
    with pytest.raises(ConfigError) as e:
        check_depth(study, resolve_space(study))
    msg = str(e.value)
    assert "model.kwargs.steps" in msg and "steps: [4, 4, 4]" in msg and "blocks:" not in msg
