"""EAN's REINFORCE controller as an Optuna sampler: one step by hand, learning a toy reward,
rebuilt from the storage, curiosity, and its place in study files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import create_trial

from odeattn.search.backends.optuna import open_study
from odeattn.study import ConfigError, load_study, resolve_space, sample, sampler_class
from odeattn.study.samplers import ReinforceSampler

ROOT = Path(__file__).resolve().parents[1]
X = CategoricalDistribution(["a", "b", "c"])

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _done(x: str, value: float, attention: int | None = None) -> optuna.trial.FrozenTrial:
    attrs = {} if attention is None else {"attention_blocks": attention, "architecture": {"blocks": [2, 2]}}  # fmt: skip
    return create_trial(params={"x": x}, distributions={"x": X}, values=[value], user_attrs=attrs)


def test_one_controller_step_equals_the_hand_computed_reinforce_update() -> None:
    """Rewards R = 100·acc + 2·(1 − attention share): b (acc 1, 1 of 4 blocks) -> 101.5,
    a (0, 4 of 4) -> 0, c (0, 0 of 4) -> 2; baseline = their mean 34.5 (first step); advantages
    A = (67, −34.5, −32.5). With p = 1/3 and T = 5 the gradient of −mean_s log π(a_s)·A_s over
    the logits (a, b, c) is −Σ_s (onehot_s − p)·A_s / (3T) = (2.3, −4.47, 2.17); Adam's first
    step moves each logit by −lr·sign(grad): b up, a and c down, by lr = 0.05."""
    study = optuna.create_study(direction="maximize")
    for t in (_done("b", 1.0, 1), _done("a", 0.0, 4), _done("c", 0.0, 0)):
        study.add_trial(t)
    sampler = ReinforceSampler(seed=0, curiosity=0.0)
    assert sampler.sync(study) == 1
    r = np.array([101.5, 0.0, 2.0])
    assert sampler.baseline == pytest.approx(r.mean())
    adv = r - r.mean()
    onehot = np.eye(3)[[1, 0, 2]]  # the actions b, a, c
    grad = -((onehot - 1 / 3) * adv[:, None]).sum(0) / (3 * 5.0)
    step = 0.05 * grad / (np.abs(grad) + 1e-8)  # Adam, first step: m̂/√v̂ = g/|g|
    np.testing.assert_allclose(sampler.params["x"].logits, -step, atol=1e-9)
    assert sampler.params["x"].logits[1] > 0 > sampler.params["x"].logits[0]


def _toy(seed: int, n: int = 90) -> tuple[optuna.Study, ReinforceSampler]:
    sampler = ReinforceSampler(seed=seed, curiosity=0.0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: float(t.suggest_categorical("x", ["a", "b", "c"]) == "b"), n_trials=n)
    sampler.sync(study)
    return study, sampler


def test_the_controller_moves_towards_the_rewarded_choice_and_is_reproducible() -> None:
    study, sampler = _toy(0)
    logits = sampler.params["x"].logits
    assert sampler.steps == 30
    assert logits[1] > 1.0 and logits[0] < -0.4 and logits[2] < -0.4  # published lr, T = 5
    p = sampler.params["x"].probs(sampler.temperature)
    assert p[1] > 0.42  # from 1/3
    picks = [t.params["x"] == "b" for t in study.trials]
    assert sum(picks[-30:]) > sum(picks[:30])
    again, _ = _toy(0)
    assert [t.params for t in again.trials] == [t.params for t in study.trials]


def test_a_fresh_sampler_rebuilds_the_controller_from_the_storage() -> None:
    study, sampler = _toy(3, n=30)
    fresh = ReinforceSampler(seed=99, curiosity=0.0)  # a resumed run or another worker
    assert fresh.sync(study) == sampler.steps == 10
    np.testing.assert_array_equal(fresh.params["x"].logits, sampler.params["x"].logits)
    assert fresh.baseline == sampler.baseline


def test_curiosity_rewards_novelty_and_decays_for_repeated_architectures() -> None:
    study = optuna.create_study(direction="maximize")
    for _ in range(30):
        study.add_trial(_done("a", 0.5))  # the same architecture, ten steps
    sampler = ReinforceSampler(seed=0)
    sampler.sync(study)
    first, last = sampler.bonuses[0], sampler.bonuses[-1]
    assert len(sampler.bonuses) == 10 and first > 0 and last < 0.5 * first
    for _ in range(3):
        study.add_trial(_done("c", 0.5))  # a new one
    sampler.sync(study)
    assert sampler.bonuses[-1] > 2 * last


def test_floats_are_drawn_uniformly_and_small_int_ranges_are_learned() -> None:
    sampler = ReinforceSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    t = study.ask({"k": IntDistribution(1, 3), "lr": FloatDistribution(0.1, 0.2)})
    assert t.params["k"] in (1, 2, 3) and 0.1 <= t.params["lr"] <= 0.2
    assert set(sampler.params) == {"k"} and sampler.params["k"].choices == (1, 2, 3)


def test_multi_objective_studies_use_the_first_objective() -> None:
    sampler = ReinforceSampler(seed=0, curiosity=0.0)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    study.optimize(
        lambda t: (float(t.suggest_categorical("x", ["a", "b"]) == "a"), 1.0), n_trials=30
    )
    sampler.sync(study)
    assert sampler.params["x"].logits[1] > sampler.params["x"].logits[0]  # b minimises


def test_reinforce_is_a_study_sampler(tmp_path: Path) -> None:
    study = load_study(
        ROOT / "studies" / "lth4sa_supernet.yaml", runs_dir=str(tmp_path), sampler={"name": "reinforce", "seed": 0, "kwargs": {"lr": 0.1}}
    )  # fmt: skip
    space = resolve_space(study)
    s = open_study(study, str(tmp_path / "j.log"), space)
    assert sampler_class("reinforce") is ReinforceSampler and isinstance(
        s.sampler, ReinforceSampler
    )
    assert s.sampler.lr == 0.1
    flat = sample(s.ask(), space)
    assert set(flat) == {f"placement.s{i}.b{j}" for i in range(3) for j in range(3)}
    with pytest.raises(ConfigError) as e:
        resolve_space(load_study(ROOT / "studies" / "lth4sa_supernet.yaml", sampler={"name": "reinforce", "kwargs": {"lr": 0}}))  # fmt: skip
    assert e.value.key == "sampler.kwargs" and "`lr` must be a positive number" in str(e.value)
