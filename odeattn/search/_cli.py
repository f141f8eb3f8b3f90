"""The heavy half of ``python -m odeattn.search``: resolve the study against the registries, then
a dry run or the search itself (``__main__`` parses and validates the file's schema first, without
importing torch, so ``--help`` and schema errors answer at once)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from odeattn.search._dryrun import dry_run
from odeattn.search._run import run_search
from odeattn.search.backends.ray import check_ray
from odeattn.search.oneshot import check_supernet, dry_run_supernet
from odeattn.search.storage import StorageFault, budget_used, interrupted
from odeattn.study import (
    ConfigError,
    SearchFailed,
    SetupError,
    StudyConfig,
    check_data,
    check_depth,
    resolve_space,
)

__all__ = ["run"]


def _print_dry(console: Any, study: StudyConfig, rows: list[dict[str, Any]]) -> None:

    batch = escape(str(rows[0]["batch"])) if rows else ""  # [..] is not markup
    console.print(f"[bold]{study.name}[/]: valid; {batch}")
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


def _dry(args: argparse.Namespace, study: StudyConfig, space: Any, console: Any) -> int:
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


def run(args: argparse.Namespace, study: StudyConfig) -> int:
    """Resolve ``study`` (exit 2 on a registry error), then the dry run or the search."""
    console = Console(quiet=args.quiet, width=None if sys.stdout.isatty() else 160)
    try:
        space = resolve_space(study)
        check_ray(study)
        check_supernet(study, space)  # issue 19: a space one supernet can share
        check_depth(study, space)  # issue 21: TNS on stages too shallow to measure it
        if args.dry_run:
            return _dry(args, study, space, console)
        check_data(study)  # the data loads before any storage or study is created
        return _search(args, study, space, console)
    except (ConfigError, SetupError) as e:  # set-up/data problems: one line, budget intact
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (SearchFailed, StorageFault) as e:  # every trial failed; the storage failed mid-run
        print(f"error: {e}", file=sys.stderr)
        if interrupted(e):  # Ctrl-C while the storage was away: an interrupt (exit 130, hint)
            raise KeyboardInterrupt from None
        return 1
    except OSError as e:  # a full disk or a read-only folder while writing results: one line
        where = e.filename or study.run_dir
        print(
            f"error: {where}: {e.strerror or e} (writing the study's results); free space or fix "
            "the permissions, then re-run the same command (the stored trials are kept)",
            file=sys.stderr,
        )
        return 1
