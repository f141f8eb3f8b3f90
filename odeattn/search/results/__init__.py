"""What a study found: finished trials and the Pareto front, noise, the summary, exports, plots.

``_front`` (finished trials, Pareto dominance), ``_noise`` (rank correlations with CIs and the
noise ceiling), ``_export`` (summary table, ``best/*.yaml``), ``_plots`` (PNG figures).
"""

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
from odeattn.search.results._noise import conclude, format_corr, kendall_ci, noise_lines
from odeattn.search.results._plots import study_plots
from odeattn.search.results._summary import summary_document, write_summary

__all__ = [
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
    "kendall_ci",
    "n_dominating",
    "noise_lines",
    "pareto",
    "study_plots",
    "summary_document",
    "summary_table",
    "trial_values",
    "write_summary",
]
