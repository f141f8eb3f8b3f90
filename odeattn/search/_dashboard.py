"""What optuna-dashboard shows for a trial: user attributes and artifacts.

User attributes (JSON values): ``placement`` ("110|0011"), ``adaptor`` (preset name or spec
dict), ``method`` (tableau per stage), ``params``, ``flops``, ``attention_blocks``, ``tns`` (end),
``tns@init``, ``nsi_per_stage`` and ``nsi_per_block`` (end), ``epochs_run``, ``metrics`` (every
measured value), ``intermediate`` ({metric: [value per epoch]}), ``architecture`` (the dict that
``create_model(**architecture)`` rebuilds; export reads it back), ``screen_score``,
``screen_kept``, ``screen_rank``, ``screen_reason``… (the TNS screen's decision, from
``odeattn.proxies.ScreenDecision``). Artifacts per trial, stored by ``optuna.artifacts.FileSystemArtifactStore`` under
``runs/<study>/artifacts``: ``nsi_depth_<n>.png`` (NSI along depth at init and at the end) and
``arch_<n>.yaml`` (the architecture file ``python -m odeattn.train --arch`` reads).

    optuna-dashboard <storage> --artifact-dir runs/<study>/artifacts
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import yaml
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from odeattn.search._config import StudyConfig

__all__ = ["arch_document", "artifact_dir", "dashboard_command", "record_trial"]


def artifact_dir(study: StudyConfig) -> Path:
    return study.run_dir / "artifacts"


def dashboard_command(storage: str, study: StudyConfig) -> str:
    return f"optuna-dashboard {storage} --artifact-dir {artifact_dir(study)}"


def _json(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/inf; the dashboard would choke on them
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    return v


def arch_document(
    study: StudyConfig, arch: dict[str, Any], train_over: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The YAML document ``python -m odeattn.train --arch FILE`` retrains: model, train, data.

    ``train`` holds the recipe and the study's and trial's overrides but not the search's short
    epoch count: retraining runs the full recipe (``--epochs N`` reproduces the search budget,
    recorded under ``search.epochs_per_trial`` by the export).
    """
    over = {
        k: v
        for k, v in {**dict(study.train.overrides), **(train_over or {})}.items()
        if k != "epochs"
    }
    train = {"recipe": study.train.recipe, **over}
    data = {
        "name": study.data.name,
        "val_fraction": study.data.val_fraction,
        "seed": study.data.seed,
    }
    if study.data.root:
        data["root"] = study.data.root
    return {"model": _json(arch), "train": _json(train), "data": data}


def _nsi_png(path: Path, summaries: dict[str, Any], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
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
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _upload(study: StudyConfig, trial: Any, path: Path, mimetype: str) -> None:

    store_dir = artifact_dir(study)
    store_dir.mkdir(parents=True, exist_ok=True)
    upload_artifact(
        artifact_store=FileSystemArtifactStore(str(store_dir)),
        file_path=str(path),
        study_or_trial=trial,
        mimetype=mimetype,
    )


def record_trial(
    study: StudyConfig,
    trial: Any,
    model: Any,
    arch: dict[str, Any],
    out: dict[str, float],
    summaries: dict[str, Any],
    history: dict[str, list[float]],
    train_over: dict[str, Any] | None = None,
) -> None:
    """Write the user attributes and (for an ``optuna.Trial``) the artifacts of one trial."""
    end, init = summaries["end"], summaries["init"]
    attrs = {
        "placement": arch.get("placement"),
        "adaptor": arch.get("adaptor"),
        "method": arch.get("method"),
        "params": int(out["params"]),
        "flops": out.get("flops"),
        "attention_blocks": int(out["attention_blocks"]),
        "tns": end["tns"],
        "tns@init": init["tns"],
        "nsi_per_stage": end["nsi_per_stage"],
        "nsi_per_block": end["nsi_per_block"],
        "nsi_per_stage@init": init["nsi_per_stage"],
        "nsi_kind": end["nsi_kind"],
        "epochs_run": int(out["epochs_run"]),
        "metrics": out,
        "intermediate": history,
        "architecture": arch,
        "train_overrides": train_over or {},
    }
    for k, v in attrs.items():
        trial.set_user_attr(k, _json(v))
    if not hasattr(trial, "_trial_id"):
        return  # not an optuna.Trial: attributes only
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / f"nsi_depth_{trial.number}.png"
        _nsi_png(png, summaries, f"{study.name} trial {trial.number}: {arch.get('placement')}")
        _upload(study, trial, png, "image/png")
        yml = Path(tmp) / f"arch_{trial.number}.yaml"
        yml.write_text(yaml.safe_dump(arch_document(study, arch, train_over), sort_keys=False))
        _upload(study, trial, yml, "application/x-yaml")
