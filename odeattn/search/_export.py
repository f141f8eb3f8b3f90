"""End of a search: summary table, Pareto front / best trial, ``runs/<study>/best/*.yaml``.

The best set is the Pareto front of the COMPLETE trials (``study.best_trials``) for several
objectives, the best trial for one. Each exported file is the trial's ``architecture`` user
attribute wrapped as ``{model: <architecture>, train: {...}, data: {...}}``, the format
``python -m odeattn.train --arch FILE`` reads; ``create_model(**doc["model"])`` rebuilds the net.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from odeattn.search._config import StudyConfig
from odeattn.search._dashboard import arch_document

__all__ = ["best_trials", "export_best", "summary_table"]


def best_trials(s: optuna.Study) -> list[FrozenTrial]:
    if not s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    return list(s.best_trials) if len(s.directions) > 1 else [s.best_trial]


def export_best(study: StudyConfig, s: optuna.Study) -> list[Path]:
    """Write one YAML per best trial to ``runs/<study>/best/``; returns the paths."""
    out_dir = study.run_dir / "best"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("trial_*.yaml"):
        old.unlink()
    paths = []
    for t in best_trials(s):
        arch = t.user_attrs.get("architecture")
        if not arch:
            continue
        doc = arch_document(study, arch, t.user_attrs.get("train_overrides"))
        doc["search"] = {
            "study": study.name,
            "trial": t.number,
            "epochs_per_trial": t.user_attrs.get("epochs_run"),
            "values": dict(zip(study.objective_names, t.values, strict=True)),
        }
        path = out_dir / f"trial_{t.number}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths.append(path)
    return paths


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if not math.isfinite(v) else f"{v:.4g}"
    return "" if v is None else str(v)


def summary_table(study: StudyConfig, s: optuna.Study, limit: int = 20) -> Any:
    """A rich Table: counts by state, then the best trials with objectives and architecture."""

    trials = s.get_trials(deepcopy=False)
    counts = {
        st.name: sum(t.state == st for t in trials)
        for st in TrialState
        if any(t.state == st for t in trials)
    }
    best = best_trials(s)
    title = (
        f"{study.name}: {len(trials)} trials ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
        f"{'Pareto front' if len(study.directions) > 1 else 'best trial'}: {len(best)}"
    )
    tab = Table(title=title)
    for col in (
        "#",
        *(f"{n} ({d[:3]})" for n, d in zip(study.objective_names, study.directions, strict=True)),
        "placement",
        "method",
        "params",
        "epochs",
    ):
        tab.add_column(col)
    for t in sorted(best, key=lambda t: t.number)[:limit]:
        ua = t.user_attrs
        method = ua.get("method")
        tab.add_row(
            str(t.number),
            *(_fmt(v) for v in t.values),
            _fmt(ua.get("placement")),
            ",".join(method) if isinstance(method, list) else _fmt(method),
            _fmt(ua.get("params")),
            _fmt(ua.get("epochs_run")),
        )
    return tab
