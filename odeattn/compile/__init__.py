"""The one compiler: method graphs (Butcher tableaux, RKCNN schemes) into ``nn.Module`` steps.

A residual block is one step ``y = x_t + h Δt ⊙ Φ``, ``Φ = Σ b_i k_i``,
``k_i = f_i(x_t + h Σ_j a_ij k_j)`` (RKCNN Eq. 2–3; StepNet Eq. 12). No other module writes a
stage loop: networks use :func:`compile_step`, the solver :class:`Stepper`, and every block
reports to the stiffness recorder through :class:`Recordable`.
"""

from odeattn.compile._base import StepBase, StepRecord
from odeattn.compile._compile import compile_step
from odeattn.compile._implicit import StageSolveError
from odeattn.compile._multistep import History, MultistepStep
from odeattn.compile._record import Recordable
from odeattn.compile._rkcnn import RKCNNStep
from odeattn.compile._step import MethodStep, Stepper

__all__ = [
    "History",
    "MethodStep",
    "MultistepStep",
    "RKCNNStep",
    "Recordable",
    "StageSolveError",
    "StepBase",
    "StepRecord",
    "Stepper",
    "compile_step",
]
