"""odeattn: residual networks as numerical ODE solvers.

A residual block is one step of a numerical method, ``x_{t+1} = x_t + Δt ⊙ Φ(x_t)`` with
``Φ = Σ b_i k_i`` from a Butcher tableau; channel attention is the adaptive step size Δt
(StepNet, ICCV 2023; DIA; RKCNN). The package compiles method graphs into ``nn.Module``s,
integrates ODEs with the same tableaux (:func:`odeint`), measures the stiffness of feature
trajectories (NSI, TNS) and searches architectures with Optuna and Ray Tune.

Heavy submodules are imported lazily, so ``import odeattn`` stays cheap and works without
optional backends (Ray).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from odeattn._errors import did_you_mean

if getattr(sys, "argv", [None])[:1] == ["-m"]:  # `python -m odeattn.X` (runpy is importing us)
    from odeattn._env import check_launch

    check_launch()  # ulimit -v too small: one line, exit 1; bad ODEATTN_THREADS: exit 2

__version__ = "0.1.0"

_LAZY = {
    "odeint": ("odeattn.solve", "odeint"),
    "ButcherTableau": ("odeattn.tableau", "ButcherTableau"),
    "TABLEAUS": ("odeattn.tableau", "TABLEAUS"),
    "get_tableau": ("odeattn.tableau", "get_tableau"),
    "MethodGraph": ("odeattn.graph", "MethodGraph"),
    "compile_step": ("odeattn.compile", "compile_step"),
    "create_model": ("odeattn.models", "create_model"),
    "list_models": ("odeattn.models", "list_models"),
    "create_adaptor": ("odeattn.adaptors", "create_adaptor"),
    "load_dataset": ("odeattn.data", "load_dataset"),
    "fit": ("odeattn.train", "fit"),
    "record": ("odeattn.stiffness", "record"),
    "tns": ("odeattn.stiffness", "tns"),
    "measure": ("odeattn.stiffness", "measure"),
}

__all__ = [
    "TABLEAUS",
    "ButcherTableau",
    "MethodGraph",
    "__version__",
    "compile_step",
    "create_adaptor",
    "create_model",
    "fit",
    "get_tableau",
    "list_models",
    "load_dataset",
    "measure",
    "odeint",
    "record",
    "tns",
]
assert set(__all__) == {"__version__", *_LAZY}

if TYPE_CHECKING:  # pragma: no cover
    from odeattn.adaptors import create_adaptor
    from odeattn.compile import compile_step
    from odeattn.data import load_dataset
    from odeattn.graph import MethodGraph
    from odeattn.models import create_model, list_models
    from odeattn.solve import odeint
    from odeattn.stiffness import measure, record, tns
    from odeattn.tableau import TABLEAUS, ButcherTableau, get_tableau
    from odeattn.train import fit


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        hint = did_you_mean(name, __all__)
        raise AttributeError(f"module 'odeattn' has no attribute {name!r}{hint}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
