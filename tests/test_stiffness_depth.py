"""Issue 21: TNS and p̂ are constants on stages with < 3 measured blocks; the helpers say where."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from odeattn.models import create_model
from odeattn.stiffness import (
    DegenerateStageWarning,
    degenerate_stages,
    measure,
    measured_blocks,
    record,
    stiffness_proportion,
    stiffness_proportion_grid,
    tns,
    tns_per_sample,
)


@pytest.mark.parametrize(
    "blocks, measured, degenerate",
    [
        ((1, 2, 3), {0: 0, 1: 1, 2: 2}, {0: 0, 1: 1, 2: 2}),
        ((3, 3, 3), {0: 2, 1: 2, 2: 2}, {0: 2, 1: 2, 2: 2}),
        ((4, 8, 3), {0: 3, 1: 7, 2: 2}, {2: 2}),
        ((8, 8, 8), {0: 7, 1: 7, 2: 7}, {}),
    ],
)
def test_measured_blocks_of_a_model_leave_out_the_first_of_each_stage(blocks, measured, degenerate):
    model = create_model("digits_resnet", blocks=list(blocks), widths=[4, 4, 4], stem_width=4)
    assert measured_blocks(model) == measured
    assert degenerate_stages(model) == degenerate
    if min(blocks) > 1:  # a recorded pass has the same columns per stage
        with record(model) as rec, torch.no_grad():
            model(torch.randn(2, 1, 8, 8))
        assert measured_blocks(rec) == measured == measured_blocks(rec.stage)


def test_measured_blocks_of_stage_ids_and_the_minimum():
    assert measured_blocks([0, 0, 2, 2, 2, 2]) == {0: 2, 2: 4}
    assert measured_blocks(torch.tensor([1, 1, 1])) == {1: 3}
    assert degenerate_stages([0, 0, 2, 2, 2, 2]) == {0: 2}
    assert degenerate_stages([0, 0, 2, 2, 2, 2], minimum=5) == {0: 2, 2: 4}
    with pytest.raises(ValueError, match="1-D sequence of stage ids"):
        measured_blocks(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no odeattn Recordable blocks"):
        measured_blocks(torch.nn.Linear(2, 2))


def test_a_two_block_stage_gives_half_and_a_one_block_stage_adds_zero():
    """The degeneracy the warning is about, with values: p̂(0, 0) = ½ for ANY two-block stage."""
    rng = np.random.default_rng(0)
    nsi = rng.uniform(0.1, 2.0, size=(50, 2))
    with pytest.warns(DegenerateStageWarning, match=r"stage\(s\) \{0: 2\}"):
        assert stiffness_proportion(nsi, [0, 0], 0.0, 0.0) == 0.5
    with pytest.warns(DegenerateStageWarning, match=r"\{0: 1, 1: 1\}"):
        assert tns(nsi, [0, 1]) == 0.0  # one measured block per stage: r = 1, no area
    with pytest.warns(DegenerateStageWarning, match="degenerate_stages"):
        assert tns_per_sample(nsi, [0, 1]).tolist() == [0.0] * 50
    with pytest.warns(DegenerateStageWarning, match="p̂"):
        grid = stiffness_proportion_grid(nsi, [0, 0], [0.0], [0.0])
    assert grid.tolist() == [[0.5]]


def test_no_warning_from_three_measured_blocks_and_p_hat_varies():
    rng = np.random.default_rng(1)
    nsi = rng.uniform(0.1, 2.0, size=(50, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        p = stiffness_proportion(nsi, [0, 0, 0, 1, 1, 1], 0.0, 0.0)
        t = tns(nsi, [0, 0, 0, 1, 1, 1])
    assert p != 0.5 and 0 < p < 1 and t > 0


def test_measure_reports_the_measured_and_degenerate_stages():
    model = create_model("digits_resnet", blocks=[3, 4, 4], widths=[4, 4, 4], stem_width=4)
    with pytest.warns(DegenerateStageWarning):
        rep = measure(model, torch.randn(6, 1, 8, 8))
    assert rep["measured_blocks"] == {0: 2, 1: 3, 2: 3}
    assert rep["degenerate_stages"] == {0: 2}
