"""What optuna-dashboard shows for a trial: short user attributes, a note, artifacts.

User attributes (short JSON values only): ``placement`` ("110|0011"), ``adaptor``, ``method``,
``params``, ``flops``, ``attention_blocks``, ``val_accuracy``, ``tns`` (end, on the fixed
evaluation set) with ``tns_se`` and ``eval_samples``, ``tns@init``, ``epochs_run``, ``seed`` and
``threads`` (a result is reproducible for a given seed and thread count), ``objectives``
({name: value}; the mean over replicates) with ``objectives_se``, ``seeds``, ``intermediate``
(per-epoch values of the objectives and the pruning metric, what the pruning rules read),
``architecture`` (what ``create_model(**architecture)`` rebuilds; export reads it back),
``train_overrides`` and the TNS screen's ``screen_*`` decision. The trial's dashboard note holds
a table of its per-epoch values (Optuna refuses ``Trial.report`` in multi-objective studies).
Artifacts per trial (``optuna.artifacts.FileSystemArtifactStore`` under ``runs/<study>/artifacts``):
``learning_curve_<n>.png``, ``nsi_depth_<n>.png`` (NSI along depth at init and at the end),
``arch_<n>.yaml`` (the file ``python -m odeattn.train --arch`` reads) and ``trial_<n>.json``
(every measured value, the per-epoch history, the NSI summaries: the long structures).

    optuna-dashboard <storage> --artifact-dir runs/<study>/artifacts
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from odeattn.search.storage import is_optuna_trial, set_user_attrs
from odeattn.study import plan_for
from odeattn.study.config import StudyConfig
from odeattn.train import RECIPES

_CURVE_KEYS = ("val_accuracy", "train_accuracy", "val_loss", "train_loss")

__all__ = ["arch_document", "artifact_dir", "dashboard_command", "record_trial"]


def artifact_dir(study: StudyConfig) -> Path:
    return study.run_dir / "artifacts"


def dashboard_command(storage: str, study: StudyConfig) -> str:
    return f"optuna-dashboard {storage} --artifact-dir {artifact_dir(study)}"


def json_safe(v: Any) -> Any:
    """``v`` for strict JSON: NaN/inf as ``None``, keys as strings, tuples as lists."""
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/inf; the dashboard would choke on them
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def arch_document(
    study: StudyConfig, arch: dict[str, Any], train_over: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The YAML document ``python -m odeattn.train --arch FILE`` retrains: model, train, data.

    ``train`` holds the settings the search trained with: the recipe and every field of the
    training config that differs from it (the epochs of one trial, the warm-up scaled with them,
    the study's and trial's overrides); pass ``--epochs`` to train longer.
    """
    base = dataclasses.asdict(RECIPES[study.train.recipe])
    used = dataclasses.asdict(plan_for(study).train_config(train_over or {}, None))
    changed = {k: v for k, v in used.items() if v != base[k] and k != "seed"}
    train = {"recipe": study.train.recipe, "epochs": used["epochs"], **changed}
    data = {
        "name": study.data.name,
        "val_fraction": study.data.val_fraction,
        "seed": study.data.seed,
    }
    if study.data.root:
        data["root"] = study.data.root
    return {"model": json_safe(arch), "train": json_safe(train), "data": data}


def _plt() -> Any:
    import matplotlib  # optional heavy backend

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _nsi_png(path: Path, summaries: dict[str, Any], title: str) -> None:
    """One per trial, so kept cheap (issue 20: it was a quarter of a supernet trial): a bare
    Agg figure (no pyplot state), fixed margins instead of ``tight_layout``, fast PNG deflate."""
    _plt()  # the Agg backend, once
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)
    for label, s in summaries.items():
        ax.plot(
            range(1, len(s["nsi_per_block"]) + 1),
            s["nsi_per_block"],
            marker="o",
            ms=3,
            label=label if label in ("init", "end") else f"epoch {label}",
        )
    ax.set_xlabel("measured block (depth)")
    ax.set_ylabel(f"mean NSI ({summaries['end']['nsi_kind']})")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(path, pil_kwargs={"compress_level": 1})


def _upload(study: StudyConfig, trial: Any, path: Path, mimetype: str) -> None:

    store_dir = artifact_dir(study)
    store_dir.mkdir(parents=True, exist_ok=True)
    upload_artifact(
        artifact_store=FileSystemArtifactStore(str(store_dir)),
        file_path=str(path),
        study_or_trial=trial,
        mimetype=mimetype,
    )


def _curve_png(path: Path, history: dict[str, list[float]], title: str) -> None:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=100)
    for k, ax in (
        ("val_accuracy", a1),
        ("train_accuracy", a1),
        ("val_loss", a2),
        ("train_loss", a2),
    ):
        if history.get(k):
            ax.plot(range(1, len(history[k]) + 1), history[k], marker="o", ms=3, label=k)
    for ax, y in ((a1, "accuracy"), (a2, "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(y)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def per_epoch_columns(history: dict[str, list[float]]) -> dict[str, list[float | None]]:
    """The per-epoch series, one column per metric: ``tns@k`` (one value, measured at epoch k)
    becomes row k of a ``tns`` column instead of a column of its own."""
    cols: dict[str, list[float | None]] = {
        k: list(history[k]) for k in _CURVE_KEYS if history.get(k)
    }
    for key in sorted(k for k in history if "@" in k):
        name, at = key.split("@", 1)
        if at.isdigit() and history[key]:
            col = cols.setdefault(name, [])
            col.extend([None] * (int(at) - len(col)))
            col[int(at) - 1] = history[key][-1]
    return cols


def _note(trial: Any, history: dict[str, list[float]]) -> None:
    """Per-epoch values as a Markdown table in the trial's optuna-dashboard note (Optuna refuses
    ``Trial.report`` in multi-objective studies, so the note is where every study shows them)."""
    from optuna_dashboard import save_note  # optional: the dashboard package

    cols = per_epoch_columns(history)
    rows = ["| epoch | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for e in range(max((len(c) for c in cols.values()), default=0)):
        cells = [f"{c[e]:.4g}" if e < len(c) and c[e] is not None else "" for c in cols.values()]
        rows.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    save_note(trial, f"## Trial {trial.number}: per-epoch values\n\n" + "\n".join(rows))


def _attrs(arch: dict[str, Any], out: dict[str, float], train_over: Any, study: Any) -> dict:
    """The short user attributes (long structures go to the ``trial_<n>.json`` artifact)."""
    return {
        "placement": arch.get("placement"),
        "adaptor": arch.get("adaptor"),
        "method": arch.get("method"),
        "params": int(out["params"]),
        "flops": out.get("flops"),
        "attention_blocks": int(out["attention_blocks"]),
        "val_accuracy": out.get("val_accuracy"),
        "tns": out.get("tns"),
        "tns_se": out.get("tns_se"),
        "tns@init": out.get("tns@init"),
        "eval_samples": int(out.get("eval_samples", 0)),
        "epochs_run": int(out["epochs_run"]),
        "seed": None if not math.isfinite(out.get("seed", math.nan)) else int(out["seed"]),
        "threads": int(out.get("threads", 0)),
        "objectives": {n: out.get(n) for n in study.objective_names},
        "architecture": arch,
        "train_overrides": train_over or {},
    }


def record_trial(
    study: StudyConfig,
    trial: Any,
    model: Any,
    arch: dict[str, Any],
    out: dict[str, float],
    summaries: dict[str, Any],
    history: dict[str, list[float]],
    train_over: dict[str, Any] | None = None,
    *,
    artifacts: bool = True,
) -> None:
    """Write the user attributes (in one storage write, issue 20) and (for an ``optuna.Trial``,
    unless ``artifacts=False``) the artifacts and the note. The attributes go first; a failure of
    the files after them (a full disk, a plotting error) is the ``artifact_error`` attribute and
    one warning line, never a lost trial (issue 18)."""
    set_user_attrs(
        trial, {k: json_safe(v) for k, v in _attrs(arch, out, train_over, study).items()}
    )
    if not artifacts or not is_optuna_trial(trial):
        return  # attributes only
    try:
        _artifacts(study, trial, arch, out, summaries, history, train_over)
        if history:
            _note(trial, history)
    except Exception as e:
        why = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        trial.set_user_attr("artifact_error", why)
        print(
            f"warning: trial {trial.number}: artifacts not written ({why}); its values are stored",
            file=sys.stderr,
            flush=True,
        )


def _artifacts(
    study: StudyConfig,
    trial: Any,
    arch: dict[str, Any],
    out: dict[str, float],
    summaries: dict[str, Any],
    history: dict[str, list[float]],
    train_over: dict[str, Any] | None,
) -> None:
    n, title = trial.number, f"{study.name} trial {trial.number}: {arch.get('placement')}"
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / f"nsi_depth_{n}.png"
        _nsi_png(png, summaries, title)
        _upload(study, trial, png, "image/png")
        if history:
            curve = Path(tmp) / f"learning_curve_{n}.png"
            _curve_png(curve, history, title)
            _upload(study, trial, curve, "image/png")
        yml = Path(tmp) / f"arch_{n}.yaml"
        yml.write_text(yaml.safe_dump(arch_document(study, arch, train_over), sort_keys=False))
        _upload(study, trial, yml, "application/x-yaml")
        js = Path(tmp) / f"trial_{n}.json"
        js.write_text(
            json.dumps(json_safe({"metrics": out, "per_epoch": history, "stiffness": summaries}))
        )
        _upload(study, trial, js, "application/json")
