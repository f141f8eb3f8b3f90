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
import importlib
import os
import sys
from typing import Any

import yaml

from odeattn._env import threads_from_env
from odeattn.search.processes import interrupt_once
from odeattn.study.config import ConfigError, load_study

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
    p.add_argument(
        "--threads",
        type=int,
        help="torch threads per trial (default: the free cores per worker; ODEATTN_THREADS)",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="print nothing but warnings and errors (no progress, no summary on the console; "
        "summary.md, summary.json, best/ and the plots are still written)",
    )
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


#: flags that count something: (flag, attribute, smallest valid value)
_COUNTS = (
    ("--n-trials", "n_trials", 1),
    ("--workers", "workers", 1),
    ("--epochs", "epochs", 1),
    ("--threads", "threads", 1),
    ("--dry-run-configs", "dry_run_configs", 1),
    ("--dry-run-batch", "dry_run_batch", 2),
)


def _check_flags(a: argparse.Namespace) -> str | None:
    """The first bad flag value as one line (the flag is named, not the study file)."""
    for flag, attr, low in _COUNTS:
        v = getattr(a, attr)
        if v is not None and v < low:
            return f"{flag} must be >= {low}, but got {flag} {v}"
    if a.timeout is not None and not a.timeout > 0:
        return f"--timeout must be > 0 seconds, but got --timeout {a.timeout}"
    try:
        threads_from_env()  # ODEATTN_THREADS= (empty), abc, 0: one line now, not in every worker
    except ValueError as e:
        return str(e)
    return None


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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    bad = _check_flags(args)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    if args.threads is not None:  # workers, Ray trials and this process read it
        os.environ["ODEATTN_THREADS"] = str(args.threads)
    try:
        study = load_study(args.study, **_overrides(args, _raw(args.study)))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # torch, the registries and the backends only now: --help and schema errors answer at once
    return importlib.import_module("odeattn.search._cli").run(args, study)


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    interrupt_once()  # Ctrl-C / SIGTERM: one KeyboardInterrupt, later ones ignored
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to continue the study", file=sys.stderr)
        code = 130
    sys.exit(code)
