"""Step-size adaptors: attention modules as the adaptive step Δt of a residual step.

A residual block with attention is ``x_{t+1} = x_t + Δt ⊙ Φ(x_t)`` (StepNet Eq. 7; StepNet uses
Δt = F̃(x_t + Φ, x_t), Eq. 12; DIA shares one adaptor per stage, Eq. 2). Every adaptor is an
``nn.Module`` called ``dt = adaptor(x_t, phi, index=0)`` that returns Δt ∈ (0, 1) broadcastable to
x_t. It is composed as in the DIA paper's Fig. 1 — extraction → processing → gate — from an
:class:`AdaptorSpec`; :data:`ADAPTORS` names the published modules (see ``_presets``).

    create_adaptor("se", 64)                                  # per block
    create_adaptor("dia_lstm", 64, shared_blocks=18)          # one per stage; bind(a, i) per block
    create_adaptor({"preset": "eca", "kernel_size": 5}, 128)  # YAML form
    create_adaptor(AdaptorSpec(inputs="pair", processor="eca"), 256)
"""

from __future__ import annotations

from ._adaptor import Adaptor, BoundAdaptor, bind
from ._extract import dct_filters
from ._gate import GATES
from ._iebn import IEBatchNorm2d
from ._presets import ADAPTORS, PRESETS, create_adaptor, default_sharing, resolve_spec
from ._process import eca_kernel_size
from ._spec import SPEC_CHOICES, AdaptorSpec

__all__ = [
    "ADAPTORS",
    "GATES",
    "PRESETS",
    "SPEC_CHOICES",
    "Adaptor",
    "AdaptorSpec",
    "BoundAdaptor",
    "IEBatchNorm2d",
    "bind",
    "create_adaptor",
    "dct_filters",
    "default_sharing",
    "eca_kernel_size",
    "resolve_spec",
]
