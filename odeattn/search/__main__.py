"""``python -m odeattn.search STUDY.yaml [--dry-run] [--n-trials N] [--workers N]
[--backend optuna|ray] [--address ADDR] [--storage URL] [--epochs N] [--timeout S]``.

Validates the study (bad files exit 2 with one line naming FILE, key and fix; nothing is written),
runs the search with a progress display, then prints the summary table and the Pareto front (or
best trial), writes ``runs/<study>/best/*.yaml`` and ``runs/<study>/plots/*.png``, and prints the
optuna-dashboard command. Re-running the same command continues the study towards its total
``budget.n_trials``; a trial left RUNNING by a killed process is failed and re-queued.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from odeattn.search._dryrun import dry_run
from odeattn.search._run import run_search
from odeattn.search._signals import interrupt_once
from odeattn.search.backends.ray import check_ray
from odeattn.search.oneshot import check_supernet, dry_run_supernet  # issue 19
from odeattn.search.storage import budget_used
from odeattn.study import check_data, resolve_space
from odeattn.study.config import ConfigError, SearchFailed, SetupError, StudyConfig, load_study

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m odeattn.search", description=__doc__.split("\n\n")[1]
    )
    p.add_argument("study", help="study YAML file, e.g. studies/lth4sa.yaml")
    p.add_argument(
        "--dry-run", action="store_true", help="validate, sample 3 configurations, build, one batch"
    )
    p.add_argument("--n-trials", type=int, help="override budget.n_trials (the study total)")
    p.add_argument("--workers", type=int, help="local worker processes (optuna backend)")
    p.add_argument("--backend", choices=["optuna", "ray"])
    p.add_argument("--address", help="Ray cluster address (ray backend)")
    p.add_argument("--storage", help="Optuna storage URL or journal file path")
    p.add_argument("--study-name", help="override the study's name (a new study in the storage)")
    p.add_argument(
        "--accept-changed-study",
        action="store_true",
        help="continue a study of this name although its search space or metrics changed",
    )
    p.add_argument(
        "--runs-dir", help="directory for default storage, artifacts, exports (default runs)"
    )
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument(
        "--timeout", type=float, help="override budget.timeout (seconds, this invocation)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--dry-run-configs",
        type=int,
        default=3,
        help="configurations a dry run samples (default 3)",
    )
    p.add_argument(
        "--dry-run-batch", type=int, default=8, help="batch size of a dry run (default 8)"
    )
    return p


def _overrides(a: argparse.Namespace, raw: dict[str, Any]) -> dict[str, Any]:
    o: dict[str, Any] = {}
    for key, val in (
        ("workers", a.workers),
        ("backend", a.backend),
        ("storage", a.storage),
        ("runs_dir", a.runs_dir),
        ("n_trials", a.n_trials),
        ("name", a.study_name),
    ):
        if val is not None:
            o[key] = val
    if a.epochs is not None:
        o["train"] = {**(raw.get("train") or {}), "epochs": a.epochs}
    if a.timeout is not None:
        o["budget"] = {**(raw.get("budget") or {}), "timeout": a.timeout}
        if a.n_trials is not None:
            o["budget"]["n_trials"] = a.n_trials
    if a.address is not None:
        o["ray"] = {**(raw.get("ray") or {}), "address": a.address}
    return o


def _raw(path: str) -> dict[str, Any]:

    try:
        with open(path) as f:
            d = yaml.safe_load(f)
        return d if isinstance(d, dict) else {}
    except (OSError, yaml.YAMLError):
        return {}


def _print_dry(console: Any, study: StudyConfig, rows: list[dict[str, Any]]) -> None:

    console.print(f"[bold]{study.name}[/]: valid; {rows[0]['batch'] if rows else ''}")
    tab = Table(title=f"dry run: {len(rows)} sampled configurations, one batch each")
    for col in ("#", "placement", "method", "params", "loss", "TNS", "att. blocks"):
        tab.add_column(col, overflow="fold")
    for r in rows:
        m = r["method"]
        if isinstance(m, list):
            m = f"{m[0]}×{len(m)}" if len(set(m)) == 1 else ",".join(m)
        tab.add_row(
            str(r["trial"]),
            str(r["placement"]),
            str(m),
            f"{r['n_params']:,}",
            f"{r['loss']:.3f}",
            f"{r['tns']:.4g}",
            str(r["attention_blocks"]),
        )
    console.print(tab)
    for r in rows:
        shown = {k: v for k, v in r["params"].items() if not k.startswith("placement.")}
        if shown or r["train"]:
            console.print(f"  #{r['trial']}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))


def _search(args: argparse.Namespace, study: StudyConfig, space: Any, console: Any) -> int:
    """Run the search; 1 when the budget was not reached although no timeout was set."""
    s = run_search(
        study,
        space,
        console=console,
        progress=not args.quiet,
        accept_changes=args.accept_changed_study,
    )
    used, total = budget_used(s), study.budget.n_trials
    if used < total and study.budget.timeout is None:
        print(
            f"error: study {study.name!r}: {used} of {total} trials counted; work was lost or not "
            "done (see above); re-run the same command to continue",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    console = Console(quiet=args.quiet, width=None if sys.stdout.isatty() else 160)
    try:
        study = load_study(args.study, **_overrides(args, _raw(args.study)))
        space = resolve_space(study)
        check_ray(study)
        check_supernet(study, space)  # issue 19: a space one supernet can share
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        try:
            rows = dry_run(study, space, args.dry_run_configs, args.dry_run_batch)
        except (ValueError, TypeError) as e:  # a sampled configuration the model refuses
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(
                f"error: {space.file}: params: a sampled configuration failed to build: {first}",
                file=sys.stderr,
            )
            return 2
        _print_dry(console, study, rows)
        if study.strategy == "supernet":  # issue 19: the supernet runs each configuration
            for line in dry_run_supernet(study, [r["params"] for r in rows]):
                console.print(line, highlight=False, soft_wrap=True)
        return 0
    try:
        check_data(study)  # issue 12: the data loads before any storage or study is created
        return _search(args, study, space, console)
    except (ConfigError, SetupError) as e:  # set-up/data problems: one line, budget intact
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SearchFailed as e:  # every trial failed
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    interrupt_once()  # Ctrl-C / SIGTERM: one KeyboardInterrupt, later ones ignored
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to continue the study", file=sys.stderr)
        code = 130
    sys.exit(code)
