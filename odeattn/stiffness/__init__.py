"""Stiffness of feature trajectories: NSI recording, exact TNS, δ and the stiffness proportion.

StepNet (ICCV 2023), Def. 1–2 and Sec. 3.1:

    NSI(x_t) = ‖(x_{t+1} − x_t) ⊘ Δ_t‖₂ / ‖x_t‖₂          δ(M1, M2) = P_x[∃t: NSI_t ≥ max(μ_s(1 + M1), M2)]
    TNS = ∬_{M1, M2 ≥ 0} δ(M) dM                          p̂(M) = (1/L) E_x #{t : NSI_t ≥ max(μ_s(1 + M1), M2)}

A leaf: it records any model whose blocks are :class:`odeattn.compile.Recordable`, and never
imports train or search. ``python -m odeattn.stiffness`` compares models side by side.
TNS and p̂ measure something only where every stage has >= 3 measured blocks (the first block of a
stage is not measured): :func:`degenerate_stages` says where not, and the metrics warn.
"""

from odeattn.stiffness._depth import (
    MIN_MEASURED,
    DegenerateStageWarning,
    degenerate_stages,
    measured_blocks,
)
from odeattn.stiffness._measure import measure
from odeattn.stiffness._metrics import (
    delta,
    delta_grid,
    stage_means,
    stiffness_proportion,
    stiffness_proportion_grid,
    tns,
    tns_grid,
    tns_per_sample,
)
from odeattn.stiffness._probe import BN_MODES, as_found, preserved, record_batch
from odeattn.stiffness._recorder import NSI_DEFINITIONS, Recorder, record

__all__ = [
    "BN_MODES",
    "MIN_MEASURED",
    "NSI_DEFINITIONS",
    "DegenerateStageWarning",
    "Recorder",
    "as_found",
    "degenerate_stages",
    "delta",
    "delta_grid",
    "measure",
    "measured_blocks",
    "preserved",
    "record",
    "record_batch",
    "stage_means",
    "stiffness_proportion",
    "stiffness_proportion_grid",
    "tns",
    "tns_grid",
    "tns_per_sample",
]
