"""Method graphs: one step of a numerical method as an explicit networkx DiGraph (no torch.nn).

Runge–Kutta tableaux and RKCNN schemes (:mod:`odeattn.graph._graph`) and linear multistep
methods, whose nodes also read earlier steps' states and derivatives
(:mod:`odeattn.graph._multistep`: variable-step Adams–Bashforth, Adams PECE, LM-ResNet).
"""

from odeattn.graph._graph import STEP_KINDS, GraphKind, MethodGraph
from odeattn.graph._multistep import MULTISTEP_SCHEMES, adams_weights

__all__ = ["MULTISTEP_SCHEMES", "STEP_KINDS", "GraphKind", "MethodGraph", "adams_weights"]
