"""odeint: torchdiffeq's calling convention on odeattn's tableaux.

Fixed grids, adaptive steps (embedded pair + PI controller), implicit stages, dense output,
per-sample steps and the backsolve adjoint; ``y' = f(t, y)``, output ``(len(t), *y0.shape)``.
"""

from odeattn.solve._odeint import (
    OPTIONS,
    SolveStats,
    last_stats,
    odeint,
)

__all__ = [
    "OPTIONS",
    "SolveStats",
    "last_stats",
    "odeint",
]
