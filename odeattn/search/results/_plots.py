"""Study plots (PNG, matplotlib Agg), also uploaded as study artifacts for optuna-dashboard.

``pareto.png``: every finished trial (``_front.finished``) in objective space as a pairwise grid
over all objectives (one panel for two, ``n(n-1)/2`` panels for n), the Pareto front of all n
objectives in red, every point labelled with its trial number — so a front point that looks
dominated in one panel is visibly better in another; with more than ``LABELS`` finished trials
only the front's points are labelled (the first ``LABELS`` by number), since thousands of labels
are an unreadable blot and cost minutes to draw (issue 20). ``tns_vs_accuracy.png``: TNS at the end of
training against validation accuracy (StepNet Fig. 7; the means over replicates when both are
objectives) with Kendall's τ, its bootstrap 95 % CI and
n (``_noise.kendall_ci``; "undefined" with the reason, never "nan").
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from odeattn.search.results._front import best_of, finished
from odeattn.search.results._noise import format_corr, kendall_ci
from odeattn.search.trial import artifact_dir
from odeattn.study.config import StudyConfig

__all__ = ["study_plots"]


def _plt() -> Any:
    import matplotlib  # optional heavy backend

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: At most this many points of a plot carry their trial number.
LABELS = 60


def _labelled(done: list, front: set[int]) -> set[int]:
    """The trial numbers to label: every point of a small study, else the front's first LABELS."""
    if len(done) <= LABELS:
        return {t.number for t, _ in done}
    return set(sorted(front)[:LABELS])


def _panel(ax: Any, done: list, front: set[int], i: int, j: int) -> None:
    labelled = _labelled(done, front)
    for on, style in ((False, dict(c="0.6", s=14)), (True, dict(c="C3", s=26))):
        pts = [(t, v) for t, v in done if (t.number in front) == on]
        ax.scatter([v[i] for _, v in pts], [v[j] for _, v in pts], **style)
        for t, v in pts:
            if t.number in labelled:
                ax.annotate(
                    str(t.number),
                    (v[i], v[j]),
                    xytext=(3, 2),
                    textcoords="offset points",
                    fontsize=7,
                )


def _pareto(study: StudyConfig, s: optuna.Study, path: Path) -> bool:
    done = finished(study, s)
    if not done:
        return False
    plt = _plt()
    names = study.objective_names
    labels = [f"{n} ({d[:3]})" for n, d in zip(names, study.directions, strict=True)]
    front = {t.number for t, _ in best_of(study, s)}
    if len(names) == 1:
        fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
        ax.scatter([t.number for t, _ in done], [v[0] for _, v in done], s=14)
        ax.set(xlabel="trial", ylabel=labels[0])
    else:
        pairs = list(itertools.combinations(range(len(names)), 2))
        cols = min(3, len(pairs))
        rows = -(-len(pairs) // cols)
        fig, axes = plt.subplots(
            rows, cols, figsize=(4.2 * cols, 3.6 * rows), dpi=100, squeeze=False
        )
        for ax, (i, j) in zip(axes.flat, pairs, strict=False):
            _panel(ax, done, front, i, j)
            ax.set(xlabel=labels[i], ylabel=labels[j])
        for ax in list(axes.flat)[len(pairs) :]:
            ax.axis("off")
    fig.suptitle(
        f"{study.name}: {len(done)} finished trials, Pareto front over all {len(names)} "
        f"objectives in red ({len(front)}); labels = trial numbers"
        + ("" if len(done) <= LABELS else f" (front only, at most {LABELS})"),
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _tns_acc(study: StudyConfig, s: optuna.Study, path: Path) -> bool:
    pts = []
    for t, _ in finished(study, s):
        ua = {**t.user_attrs, **(t.user_attrs.get("objectives") or {})}  # means over replicates
        if ua.get("tns") is not None and ua.get("val_accuracy") is not None:
            pts.append((t.number, ua["tns"], ua["val_accuracy"]))
    if len(pts) < 2:
        return False
    _, x, y = zip(*pts, strict=True)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.scatter(x, y, s=14)
    for n, a, b in pts if len(pts) <= LABELS else ():  # thousands of labels: none
        ax.annotate(str(n), (a, b), xytext=(3, 2), textcoords="offset points", fontsize=7)
    ax.set_xlabel("TNS (end of training, evaluation set)")
    ax.set_ylabel("validation accuracy")
    corr = format_corr(kendall_ci(x, y, n_boot=study.noise.bootstrap))
    ax.set_title(f"{study.name}: {corr}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def study_plots(study: StudyConfig, s: optuna.Study) -> list[Path]:
    """Write the plots under ``runs/<study>/plots`` and upload each as a study artifact."""
    out = study.run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    store_dir = artifact_dir(study)
    store_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for name, fn in (("pareto.png", _pareto), ("tns_vs_accuracy.png", _tns_acc)):
        if fn(study, s, out / name):
            made.append(out / name)
            upload_artifact(
                artifact_store=FileSystemArtifactStore(str(store_dir)),
                file_path=str(out / name),
                study_or_trial=s,
                mimetype="image/png",
            )
    return made
