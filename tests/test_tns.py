"""Exact TNS, δ and p̂ against hand-computed values and brute force from the definition (Eq. 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from odeattn.stiffness import (
    delta,
    delta_grid,
    stage_means,
    stiffness_proportion,
    stiffness_proportion_grid,
    tns,
    tns_grid,
    tns_per_sample,
)

# synthetic stages of 1-2 measured blocks test the arithmetic; their warning is issue 21's
pytestmark = pytest.mark.filterwarnings("ignore::odeattn.stiffness.DegenerateStageWarning")


def _mu(nsi: np.ndarray, stage: np.ndarray, mode: str = "sample") -> np.ndarray:
    """μ_{s(t)} for every (sample, block), written out with loops."""
    out = np.zeros_like(nsi)
    for s in np.unique(stage):
        cols = stage == s
        mean = nsi[:, cols].mean(1, keepdims=True) if mode == "sample" else nsi[:, cols].mean()
        out[:, cols] = mean
    return out


def _brute_indicator(nsi, stage, m1, m2, mode="sample"):
    """(N, G1, G2) indicator of Eq. 5: ∃t NSI_t ≥ max(μ(1 + M1), M2)."""
    mu = _mu(nsi, stage, mode)[:, :, None, None]
    z = nsi[:, :, None, None]
    thr = np.maximum(mu * (1 + m1[None, None, :, None]), m2[None, None, None, :])
    return (z >= thr).any(1), (z >= thr)


def _brute_tns(nsi, stage, n, mode="sample"):
    mu = _mu(nsi, stage, mode)
    a_max = max(float(np.max(nsi / mu - 1)), 1e-12)
    b_max = float(nsi.max())
    m1 = (np.arange(n) + 0.5) * a_max / n
    m2 = (np.arange(n) + 0.5) * b_max / n
    ind, _ = _brute_indicator(nsi, stage, m1, m2, mode)
    return ind.mean(0).sum() * (a_max / n) * (b_max / n)


def _random(n=40, seed=0, stage=(0, 0, 0, 1, 1, 2, 2, 2)):
    rng = np.random.default_rng(seed)
    return rng.lognormal(0.0, 0.7, size=(n, len(stage))), np.array(stage)


HAND = [
    ([[1.0, 3.0]], [0, 0], 1.5),  # μ = 2: one rectangle 0.5 × 3
    ([[1.0, 2.0, 6.0]], [0, 0, 0], 6.0),  # μ = 3: 1 × 6
    # two stages, staircase: [0, 0.8] × [0, 9] ∪ [0, 1.5] × [0, 5] = 0.8·9 + 0.7·5
    ([[1.0, 9.0, 0.5, 0.5, 5.0]], [1, 1, 2, 2, 2], 0.8 * 9 + 0.7 * 5),
    ([[2.0, 2.0, 2.0]], [0, 0, 0], 0.0),  # flat trajectory: no stiffness
    ([[0.0, 0.0, 1.0, 3.0]], [0, 0, 1, 1], 1.5),  # a stage of zeros adds nothing
]


@pytest.mark.parametrize(("nsi", "stage", "expected"), HAND)
def test_tns_hand_computed(nsi, stage, expected):
    assert tns(nsi, stage) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_tns_dataset_mu_hand_computed():
    # one stage, μ = 3 over the data set: sample 1 has no rectangle, sample 2 has [0, 2/3] × [0, 5]
    nsi = [[1.0, 3.0], [3.0, 5.0]]
    assert tns(nsi, [0, 0], mu="dataset") == pytest.approx((0 + 10 / 3) / 2, rel=1e-12)
    assert tns_per_sample(nsi, [0, 0], mu="dataset") == pytest.approx([0.0, 10 / 3], rel=1e-12)
    means, ids = stage_means(nsi, [0, 0], mu="dataset")
    assert ids == [0] and means.tolist() == [[3.0]]


@pytest.mark.parametrize("mode", ["sample", "dataset"])
def test_tns_matches_brute_force_grid_and_converges(mode):
    nsi, stage = _random(n=30, seed=1)
    exact = tns(nsi, stage, mu=mode)
    errors = [abs(_brute_tns(nsi, stage, n, mode) - exact) / exact for n in (20, 80, 320)]
    assert errors[-1] < 0.01
    assert errors[-1] < errors[0]
    # the library's own grid integral (vectorised δ) agrees with the loop-free brute force
    assert tns_grid(nsi, stage, resolution=320, mu=mode) == pytest.approx(
        _brute_tns(nsi, stage, 320, mode), rel=1e-9
    )


def test_delta_and_grid_equal_definition_pointwise():
    nsi, stage = _random(n=25, seed=2)
    m1 = np.array([0.0, 0.1, 0.4, 0.9, 2.0])
    m2 = np.array([0.0, 0.5, 1.0, 2.5, 10.0])
    ind, hits = _brute_indicator(nsi, stage, m1, m2)
    np.testing.assert_array_equal(delta_grid(nsi, stage, m1, m2), ind.mean(0))
    mm1, mm2 = np.meshgrid(m1, m2, indexing="ij")
    np.testing.assert_array_equal(delta(nsi, stage, mm1, mm2), ind.mean(0))
    assert delta(nsi, stage, 0.4, 1.0) == ind.mean(0)[2, 2]
    p_brute = hits.mean((0, 1))  # (G1, G2)
    np.testing.assert_allclose(stiffness_proportion_grid(nsi, stage, m1, m2), p_brute, rtol=1e-12)
    np.testing.assert_allclose(stiffness_proportion(nsi, stage, mm1, mm2), p_brute, rtol=1e-12)


def test_delta_at_origin_and_far_away():
    nsi, stage = _random(n=10, seed=3)
    assert delta(nsi, stage, 0.0, 0.0) == 1.0  # some block is always ≥ its stage mean
    assert delta(nsi, stage, 100.0, 0.0) == 0.0  # r ≤ L_s < 101
    assert stiffness_proportion(nsi, stage, 0.0, 0.0) > 0.0


def test_invariant_to_permuting_samples_and_blocks_within_stage():
    nsi, stage = _random(n=50, seed=4)
    rng = np.random.default_rng(0)
    ref = tns(nsi, stage)
    assert tns(nsi[rng.permutation(50)], stage) == pytest.approx(ref, rel=1e-13)
    perm = np.concatenate([rng.permutation(np.flatnonzero(stage == s)) for s in (0, 1, 2)])
    assert tns(nsi[:, perm], stage[perm]) == pytest.approx(ref, rel=1e-13)
    # blocks moved across positions together with their stage ids: also unchanged
    shuffle = rng.permutation(len(stage))
    assert tns(nsi[:, shuffle], stage[shuffle]) == pytest.approx(ref, rel=1e-13)
    # relabelling stages does not matter either
    assert tns(nsi, stage + 7) == pytest.approx(ref, rel=1e-13)


@pytest.mark.parametrize("c", [1e-3, 0.5, 3.0, 1e4])
def test_scaling_is_positively_homogeneous(c):
    nsi, stage = _random(n=20, seed=5)
    for mode in ("sample", "dataset"):
        assert tns(c * nsi, stage, mu=mode) == pytest.approx(
            c * tns(nsi, stage, mu=mode), rel=1e-12
        )
    # δ scales on the M2 axis only; p̂ likewise
    assert delta(c * nsi, stage, 0.3, c * 1.2) == delta(nsi, stage, 0.3, 1.2)


def test_finite_and_bounded_on_heavy_tailed_inputs():
    rng = np.random.default_rng(6)
    stage = np.repeat([0, 1, 2], 18)  # L = 54
    for sample in (
        np.abs(rng.standard_cauchy((500, 54))),
        rng.pareto(0.5, (500, 54)) + 1e-3,  # infinite mean
    ):
        per = tns_per_sample(sample, stage)
        assert np.isfinite(per).all() and np.isfinite(tns(sample, stage))
        assert (per <= (18 - 1) * sample.max(1) * (1 + 1e-12)).all()  # Theorem 1 bound


def test_numpy_and_torch_inputs_agree():
    nsi, stage = _random(n=15, seed=7)
    assert tns(torch.tensor(nsi, dtype=torch.float32), stage) == pytest.approx(
        tns(nsi.astype(np.float32), stage), rel=1e-12
    )
    assert tns(torch.from_numpy(nsi), torch.tensor(stage)) == tns(nsi, stage)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nsi": [[1.0, -1.0]], "stage": [0, 0]}, "finite and >= 0"),
        ({"nsi": [[1.0, float("nan")]], "stage": [0, 0]}, "finite and >= 0"),
        ({"nsi": [1.0, 2.0], "stage": [0, 0]}, "2-D"),
        ({"nsi": [[1.0, 2.0]], "stage": [0, 0, 1]}, "length 2"),
        ({"nsi": [[1.0, 2.0]], "stage": [0, 0], "mu": "samples"}, "did you mean 'sample'"),
    ],
)
def test_bad_input_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tns(**kwargs)


def test_negative_threshold_rejected():
    with pytest.raises(ValueError, match="m1"):
        delta([[1.0, 2.0]], [0, 0], -0.1, 0.0)
