"""The search's proxy screen takes any zero-cost proxy of ``odeattn.proxies.PROXIES`` (issue 14 §1):
the YAML names it, the trial scores its untrained network with it, the screen decides on it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from odeattn.proxies import PROXIES
from odeattn.search import resolve_space, run_trial
from odeattn.search.trial._objective import build
from odeattn.study import _build
from odeattn.study.config._base import ConfigError
from odeattn.study.config._load import load_study

ROOT = Path(__file__).resolve().parents[1]


def _study(tmp_path: Path, screen: dict[str, Any]) -> Path:
    doc = {
        "name": "screen",
        "search_space": str(ROOT / "search_spaces" / "lth4sa_placement.yaml"),
        "model": {"name": "digits_resnet", "kwargs": {"adaptor": "se", "blocks": [3, 3, 3]}},
        "train": {"epochs": 1},
        "objectives": [{"metric": "val_accuracy", "direction": "maximize"}],
        "measure": {"samples": 64, "batch": 64},
        "screen": screen,
        "sampler": {"name": "random", "seed": 0},
        "budget": {"n_trials": 1},
        "noise": {"trials": 0},
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_every_zero_cost_proxy_is_a_valid_screen_metric(tmp_path: Path, name: str) -> None:
    assert load_study(_study(tmp_path, {"metric": name})).screen.metric == name


def test_zero_cost_screen_needs_the_untrained_network(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"screen.at: .*'snip' scores the untrained network"):
        load_study(_study(tmp_path, {"metric": "snip", "at": 2}))
    with pytest.raises(ConfigError, match="did you mean 'naswot'"):
        load_study(_study(tmp_path, {"metric": "naswott"}))


def test_trial_screen_score_is_the_proxy_of_its_untrained_network(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    study = load_study(_study(tmp_path, {"metric": "snip", "keep_fraction": 1.0}))
    space = resolve_space(study)
    params = {f"placement.s{s}.b{b}": int(b == 1) for s in range(3) for b in range(3)}
    out = run_trial(study, params, space=space, screen=lambda score: False)  # reject it
    assert out["screened_out"] == 1.0 and math.isnan(out["val_accuracy"])
    # the same initial network, rebuilt, scored by hand on the same labelled batch
    data = _build.data_for(study)
    torch.manual_seed(study.sampler.seed)
    model, _ = build(study, space, params, data)
    x = _build.input_batch(data, study.measure.samples)[:64]
    want = PROXIES["snip"](model, x, data.val.y[: len(x)])
    assert math.isfinite(want) and out["screen_score"] == pytest.approx(want, rel=1e-6)
