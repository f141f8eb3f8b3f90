"""Study plots (PNG, matplotlib Agg): Pareto front of the first two objectives; TNS vs accuracy.

``pareto.png``: every COMPLETE trial in objective space (first two objectives), the Pareto front
(``study.best_trials``) highlighted. ``tns_vs_accuracy.png``: TNS at the end of training against
validation accuracy (StepNet Fig. 7), with Kendall's τ and Spearman's ρ in the title.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState
from scipy.stats import kendalltau, spearmanr

from odeattn.search._config import StudyConfig

__all__ = ["study_plots"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pareto(study: StudyConfig, s: optuna.Study, path: Path) -> bool:
    done = s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return False
    plt = _plt()
    names = study.objective_names
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    if len(names) == 1:
        ax.plot([t.number for t in done], [t.values[0] for t in done], "o", ms=4)
        ax.set_xlabel("trial")
        ax.set_ylabel(names[0])
    else:
        front = {t.number for t in s.best_trials}
        for on, style in ((False, dict(c="0.6", ms=4)), (True, dict(c="C3", ms=6))):
            pts = [t for t in done if (t.number in front) == on]
            ax.plot(
                [t.values[0] for t in pts],
                [t.values[1] for t in pts],
                "o",
                label="Pareto front" if on else "trials",
                **style,
            )
        ax.set_xlabel(f"{names[0]} ({study.directions[0]})")
        ax.set_ylabel(f"{names[1]} ({study.directions[1]})")
        ax.legend(fontsize=8)
    ax.set_title(study.name)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _tns_acc(study: StudyConfig, s: optuna.Study, path: Path) -> bool:

    pts = []
    for t in s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        m = t.user_attrs.get("metrics") or {}
        if m.get("tns") is not None and m.get("val_accuracy") is not None:
            pts.append((m["tns"], m["val_accuracy"]))
    if len(pts) < 2:
        return False
    x, y = zip(*pts, strict=True)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.plot(x, y, "o", ms=4)
    ax.set_xlabel("TNS (end of training)")
    ax.set_ylabel("validation accuracy")
    tau, rho = kendalltau(x, y).statistic, spearmanr(x, y).statistic
    ax.set_title(f"{study.name}: Kendall τ={tau:.2f}, Spearman ρ={rho:.2f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def study_plots(study: StudyConfig, s: optuna.Study) -> list[Path]:
    out = study.run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for name, fn in (("pareto.png", _pareto), ("tns_vs_accuracy.png", _tns_acc)):
        if fn(study, s, out / name):
            made.append(out / name)
    return made
