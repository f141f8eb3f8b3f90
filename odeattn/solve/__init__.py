"""odeint: torchdiffeq's calling convention on odeattn's tableaux.

Fixed grids, adaptive steps (embedded pair + PI controller), implicit stages, dense output,
per-sample steps and the backsolve adjoint; ``y' = f(t, y)``, output ``(len(t), *y0.shape)``.
"""

from odeattn.solve._interp import hermite, mid_state, quartic
from odeattn.solve._odeint import (
    OPTIONS,
    SolveStats,
    last_stats,
    make_stepper,
    odeint,
)
from odeattn.solve._time_grad import with_time_grads

__all__ = [
    "OPTIONS",
    "SolveStats",
    "hermite",
    "last_stats",
    "make_stepper",
    "mid_state",
    "odeint",
    "quartic",
    "with_time_grads",
]
