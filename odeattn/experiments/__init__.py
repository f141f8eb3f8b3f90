"""Evidence: the proxy benchmark, search efficiency with screens, and the papers' claims reproduced.

Above ``search`` (it trains and searches). ``python -m odeattn.proxies benchmark`` and
``python -m odeattn.experiments {benchmark, efficiency, run NAME, list}`` are its entry points;
docs/results.md reports what they found.
"""

from odeattn.experiments._bench import BenchConfig, bench_rows, run_benchmark
from odeattn.experiments._cli_bench import bench_main
from odeattn.experiments._report import ceiling, correlations, write_report
from odeattn.experiments._stats import (
    bootstrap_ci,
    corr_diff_ci,
    kendall,
    mean_ci,
    noise_ceiling,
    noise_ceiling_ci,
    partial_spearman,
    spearman,
)
from odeattn.experiments._verdict import RULES, VERDICTS, verdict

__all__ = [
    "RULES",
    "VERDICTS",
    "BenchConfig",
    "bench_main",
    "bench_rows",
    "bootstrap_ci",
    "ceiling",
    "corr_diff_ci",
    "correlations",
    "kendall",
    "mean_ci",
    "noise_ceiling",
    "noise_ceiling_ci",
    "partial_spearman",
    "run_benchmark",
    "spearman",
    "verdict",
    "write_report",
]
