"""End of a search: summary table, Pareto front / best trial, ``runs/<study>/best/*.yaml``.

The best set is the Pareto front of every *finished* trial (``_front.finished``: COMPLETE, and
PRUNED ones that trained every epoch) for several objectives, the best trial for one. Each exported file is the trial's ``architecture`` user
attribute wrapped as ``{model: <architecture>, train: {...}, data: {...}}``, the format
``python -m odeattn.train --arch FILE`` reads (``train`` holds the settings the search used);
``create_model(**doc["model"])`` rebuilds the net; ``search`` records the trial, its seeds and
thread count, its values and their standard errors.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState
from rich.markup import escape
from rich.table import Table

from odeattn.search.results._front import best_of, feasible
from odeattn.search.results._noise import noise_lines
from odeattn.search.trial import arch_document
from odeattn.study import StudyConfig, plan_for

__all__ = ["best_trials", "epochs_saved", "export_best", "summary_table"]


def best_trials(study: StudyConfig, s: optuna.Study) -> list[FrozenTrial]:
    """The Pareto front (or the best trial) over every finished trial (``_front.finished``)."""
    return [t for t, _ in best_of(study, s)]


def export_best(study: StudyConfig, s: optuna.Study) -> list[Path]:
    """Write one YAML per best trial to ``runs/<study>/best/``; returns the paths."""
    out_dir = study.run_dir / "best"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("trial_*.yaml"):
        old.unlink()
    paths = []
    for t, values in best_of(study, s):
        arch = t.user_attrs.get("architecture")
        if not arch:
            continue
        doc = arch_document(study, arch, t.user_attrs.get("train_overrides"))
        doc["search"] = {
            "study": study.name,
            "trial": t.number,
            "state": t.state.name,
            "seeds": t.user_attrs.get("seeds") or [t.user_attrs.get("seed")],
            "threads": t.user_attrs.get("threads"),
            "values": dict(zip(study.objective_names, values, strict=True)),
            "standard_errors": t.user_attrs.get("objectives_se") or {},
        }
        path = out_dir / f"trial_{t.number}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths.append(path)
    return paths


def _fmt(v: Any, se: Any = None) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return "nan"
        return f"{v:.4g}" + (f" ± {se:.2g}" if isinstance(se, float) and math.isfinite(se) else "")
    return "" if v is None else str(v)


def epochs_saved(study: StudyConfig, s: optuna.Study) -> tuple[int, int]:
    """(epochs trained, epochs a run without pruning would have trained) over trained trials."""
    run = planned = 0
    epochs = plan_for(study).epochs  # once, not once per trial
    for t in s.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if "duplicate_of" in t.user_attrs or t.user_attrs.get("epochs_run") is None:
            continue
        if t.user_attrs.get("strategy") == "supernet":  # issue 19: scored, nothing trained
            continue
        k = len(t.user_attrs.get("seeds") or [0])
        run += (
            int(t.user_attrs["epochs_run"]) * k
            if t.state == TrialState.COMPLETE
            else int(t.user_attrs["epochs_run"])
        )
        planned += epochs * study.replicates
    return run, planned


def _title(study: StudyConfig, s: optuna.Study, n_best: int) -> str:
    trials = s.get_trials(deepcopy=False)
    counts = {st.name: sum(t.state == st for t in trials) for st in TrialState}
    run, planned = epochs_saved(study, s)
    saved = f"; pruning saved {1 - run / planned:.0%} of {planned} epochs" if planned else ""
    dups = sum("duplicate_of" in t.user_attrs for t in trials)
    bad = sum(t.state == TrialState.COMPLETE and not feasible(t, study) for t in trials)
    if bad:
        saved += f"; {bad} infeasible (outside the constraints, left off the front)"
    return (
        f"{study.name}: {len(trials)} trials ({', '.join(f'{k} {v}' for k, v in counts.items() if v)}"
        f"{f'; {dups} served from storage' if dups else ''}){saved}; "
        f"{'Pareto front' if len(study.directions) > 1 else 'best trial'}: {n_best}"
    )


def _failures(s: optuna.Study, shown: int = 3) -> list[str]:
    """One line per failed trial (the first ``shown``), so worker-side errors reach the console."""
    failed = [
        t
        for t in s.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if not (t.user_attrs.get("odeattn_surplus") or t.user_attrs.get("odeattn_stale"))
    ]
    lines = [
        f"trial {t.number} failed: {str(t.user_attrs.get('error', 'no error recorded')).splitlines()[0]}"
        for t in failed[:shown]
    ]
    if len(failed) > shown:
        lines.append(f"... and {len(failed) - shown} more failed trial(s)")
    return lines


def summary_table(study: StudyConfig, s: optuna.Study, limit: int = 20) -> Any:
    """A rich Table: counts by state, epochs saved, the best trials (value ± SE over replicates),
    and, as its caption, the noise ceiling and whether the front is within noise."""
    best, lines = best_of(study, s), noise_lines(study, s)
    tab = Table(
        title=escape(_title(study, s, len(best))),
        caption=escape("\n".join([*_failures(s), *lines])),
    )
    tab.noise_lines = lines  # for write_summary: its bootstrap CIs cost seconds at 10,000 trials
    for col in (
        "#",
        *(f"{n} ({d[:3]})" for n, d in zip(study.objective_names, study.directions, strict=True)),
        "placement",
        "method",
        "params",
        "epochs",
        "state",
    ):
        tab.add_column(col)
    for t, values in sorted(best, key=lambda tv: tv[0].number)[:limit]:
        ua = t.user_attrs
        method, se = ua.get("method"), ua.get("objectives_se") or {}
        tab.add_row(
            str(t.number),
            *(_fmt(v, se.get(n)) for n, v in zip(study.objective_names, values, strict=True)),
            escape(_fmt(ua.get("placement"))),
            ",".join(method) if isinstance(method, list) else _fmt(method),
            _fmt(ua.get("params")),
            _fmt(ua.get("epochs_run")),
            t.state.name,
        )
    return tab
