"""Where TNS and p̂ measure something: at least 3 measured blocks in every stage.

The first block of a stage changes its width or resolution, so it is not measured (StepNet
Sec. 3.1; ``record(include_first=False)``), and μ_s is the mean NSI of the *measured* blocks of
stage s. With L_s measured blocks the ratios r_t = ζ_t / μ_s sum to L_s, so

* L_s = 1: r = 1 exactly — the stage adds exactly 0 to TNS, and p̂(M1 = 0) counts its block always;
* L_s = 2: r₁ + r₂ = 2 — exactly one block has r ≥ 1, so p̂(M1 = 0, M2 = 0) = ½ for every network.

Such a stage contributes a constant, not a measurement. :func:`measured_blocks` counts the measured
blocks per stage (of a model, a recorder or the stage ids of an NSI matrix) and
:func:`degenerate_stages` names the stages below :data:`MIN_MEASURED`; the metrics warn with
:class:`DegenerateStageWarning` when handed such a stage, and a search that optimises, constrains
or screens by TNS or p̂ refuses a model or space with such a stage (``odeattn.study.check_depth``).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor, nn

from odeattn.compile import Recordable
from odeattn.stiffness._recorder import Recorder

__all__ = ["MIN_MEASURED", "DegenerateStageWarning", "degenerate_stages", "measured_blocks"]

MIN_MEASURED = 3


class DegenerateStageWarning(UserWarning):
    """TNS or p̂ of a stage with fewer than :data:`MIN_MEASURED` measured blocks (a constant)."""


def measured_blocks(source: nn.Module | Recorder | Sequence[Any]) -> dict[int, int]:
    """Measured blocks per stage id, ``{stage: n}``, in stage order.

    ``source`` is a model (its Recordable blocks that are not first in their stage, counted once
    each; a stage of one block gives 0), a :class:`Recorder` after a pass (its NSI columns) or the
    stage id of every NSI column (``rec.stage``; only stages with a column appear).
    """
    if isinstance(source, nn.Module):
        blocks = [m for m in source.modules() if isinstance(m, Recordable)]
        if not blocks:
            raise ValueError(
                f"`source` ({type(source).__name__}) has no odeattn Recordable blocks; build it "
                "with odeattn.models.create_model or from odeattn.compile steps"
            )
        counts = Counter({int(b.stage_id): 0 for b in blocks})
        counts.update(int(b.stage_id) for b in blocks if not b.first_in_stage)
        return dict(sorted(counts.items()))
    if isinstance(source, Recorder):
        source = source.stage if source.measured else []
    stage = np.asarray(source.detach().cpu() if isinstance(source, Tensor) else source)
    if stage.ndim != 1:
        raise ValueError(
            f"`source` must be a model, a Recorder or a 1-D sequence of stage ids, but got an "
            f"array of shape {stage.shape}"
        )
    ids, n = np.unique(stage, return_counts=True)
    return {(int(i) if isinstance(i, np.integer) else i): int(k) for i, k in zip(ids, n)}


def degenerate_stages(
    source: nn.Module | Recorder | Sequence[Any], minimum: int = MIN_MEASURED
) -> dict[int, int]:
    """The stages with fewer than ``minimum`` measured blocks, ``{stage: n}`` (empty: all fine)."""
    return {s: n for s, n in measured_blocks(source).items() if n < minimum}


def warn_degenerate(stage: Sequence[Any], what: str) -> None:
    """Warn (:class:`DegenerateStageWarning`) when ``stage`` has a stage below the minimum.

    A ``stage`` that is not 1-D is left to the caller's validation (which names the fix).
    """
    if np.ndim(stage.detach().cpu() if isinstance(stage, Tensor) else stage) != 1:
        return
    bad = degenerate_stages(stage)
    if bad:
        warnings.warn(
            f"{what} of stage(s) {bad} (stage: measured blocks) is degenerate: with 1 measured "
            "block a stage adds exactly 0 to TNS, with 2 p̂(M1=0) is ½ for every network. Use "
            f"models with >= {MIN_MEASURED + 1} blocks a stage (the first block of a stage is not "
            "measured), or check odeattn.stiffness.degenerate_stages(model) first",
            DegenerateStageWarning,
            stacklevel=3,
        )
