"""Zero-cost scores of any ``nn.Module``: TNS at initialisation, parameters, FLOPs, latency, screens.

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

__all__ = [
    "Screen",
    "ScreenDecision",
    "count_flops",
    "count_params",
    "kendall_tau",
    "measure_latency",
    "select_top",
    "spearman_rho",
    "tns_at_init",
]
