"""What a study found: finished trials and the Pareto front, noise, the summary, exports, plots.

``_front`` (finished trials, Pareto dominance), ``_noise`` (rank correlations with CIs, the
summary's noise lines), ``_ceiling`` (the noise ceiling's retrains and record), ``_export``
(summary table, ``best/*.yaml``), ``_plots`` (PNG figures).
"""

from odeattn.search.results._ceiling import Runner, conclude, fresh_seeds, measure_ceiling
from odeattn.search.results._export import best_trials, epochs_saved, export_best, summary_table
from odeattn.search.results._front import (
    as_dict,
    best_of,
    check_outcome,
    dominates,
    feasible,
    finished,
    n_dominating,
    pareto,
    trial_values,
)
from odeattn.search.results._noise import (
    format_corr,
    kendall_ci,
    noise_lines,
    planned_retrains,
)
from odeattn.search.results._plots import study_plots
from odeattn.search.results._summary import summary_document, write_summary

__all__ = [
    "Runner",
    "as_dict",
    "best_of",
    "best_trials",
    "check_outcome",
    "conclude",
    "dominates",
    "epochs_saved",
    "export_best",
    "feasible",
    "finished",
    "format_corr",
    "fresh_seeds",
    "kendall_ci",
    "measure_ceiling",
    "n_dominating",
    "noise_lines",
    "pareto",
    "planned_retrains",
    "study_plots",
    "summary_document",
    "summary_table",
    "trial_values",
    "write_summary",
]
