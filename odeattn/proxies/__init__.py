"""Zero-cost scores of any ``nn.Module``: TNS at initialisation, parameters, FLOPs, latency, screens,
and the zero-cost accuracy proxies of the NAS literature (naswot, synflow, grad_norm, snip,
jacob_cov) in the :data:`PROXIES` table.

A leaf: imports only torch and :mod:`odeattn.stiffness`.
"""

from odeattn.proxies._basic import (
    Screen,
    ScreenDecision,
    count_flops,
    count_params,
    kendall_tau,
    measure_latency,
    select_top,
    spearman_rho,
    tns_at_init,
)
from odeattn.proxies._zero_cost import (
    PROXIES,
    RELU_FUNCTIONS,
    ZeroCostProxy,
    grad_norm,
    jacob_cov,
    naswot,
    score,
    snip,
    synflow,
)

__all__ = [
    "PROXIES",
    "RELU_FUNCTIONS",
    "Screen",
    "ScreenDecision",
    "ZeroCostProxy",
    "count_flops",
    "count_params",
    "grad_norm",
    "jacob_cov",
    "kendall_tau",
    "measure_latency",
    "naswot",
    "score",
    "select_top",
    "snip",
    "spearman_rho",
    "synflow",
    "tns_at_init",
]
