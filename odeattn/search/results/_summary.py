"""The study's summary as files: ``runs/<study>/summary.md`` (the table as printed, the noise
ceiling and the relations between objectives) and ``summary.json`` (the same numbers for
scripts: counts by state, the front with values and standard errors, the noise ceiling), so a
result is kept after the terminal is gone (issue 18)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from rich.console import Console

from odeattn.search.results._front import best_of, feasible
from odeattn.search.results._noise import noise_lines
from odeattn.search.trial import json_safe
from odeattn.study import StudyConfig

__all__ = ["summary_document", "write_summary"]


def summary_document(
    study: StudyConfig, s: optuna.Study, lines: list[str] | None = None
) -> dict[str, Any]:
    """The summary's numbers as a JSON-safe dict (NaN/inf as null); ``lines``: the noise lines
    if already computed (``summary_table`` keeps them: each costs a bootstrap)."""
    trials = s.get_trials(deepcopy=False)
    best = []
    for t, values in sorted(best_of(study, s), key=lambda tv: tv[0].number):
        ua = t.user_attrs
        best.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "values": dict(zip(study.objective_names, values, strict=True)),
                "standard_errors": ua.get("objectives_se") or {},
                "placement": ua.get("placement"),
                "method": ua.get("method"),
                "params": ua.get("params"),
                "seeds": ua.get("seeds"),
            }
        )
    return json_safe(
        {
            "study": study.name,
            "directions": dict(zip(study.objective_names, study.directions, strict=True)),
            "constraints": [c.model_dump() for c in study.constraints],
            "counts": {st.name: sum(t.state == st for t in trials) for st in TrialState},
            "infeasible": sum(
                t.state == TrialState.COMPLETE and not feasible(t, study) for t in trials
            ),
            "front" if len(study.directions) > 1 else "best": best,
            "noise_ceiling": s.user_attrs.get("noise_ceiling"),
            "lines": noise_lines(study, s) if lines is None else lines,
        }
    )


def write_summary(study: StudyConfig, s: optuna.Study, table: Any) -> list[Path]:
    """Write ``summary.md`` (``table`` rendered as text) and ``summary.json``; their paths."""
    out = study.run_dir
    out.mkdir(parents=True, exist_ok=True)
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(table)
    md, js = out / "summary.md", out / "summary.json"
    md.write_text(f"# {study.name}\n\n```\n{console.export_text()}```\n")
    doc = summary_document(study, s, getattr(table, "noise_lines", None))
    js.write_text(json.dumps(doc, indent=1) + "\n")
    return [md, js]
