"""``python -m odeattn.proxies benchmark`` (also ``python -m odeattn.experiments benchmark``).

    python -m odeattn.proxies benchmark --space search_spaces/NAME.yaml --n N --epochs E \\
        --seeds S [--data digits] [--out DIR] [--jobs J]

Trains N sampled architectures S times each, J at a time on one torch thread each (see
:mod:`odeattn.experiments._bench`; the result does not depend on J or the load), prints each
proxy's Kendall τ / Spearman ρ with accuracy (bootstrap 95 % CIs), the partial correlation given
the parameter count and the noise ceiling, and writes the files of
:mod:`odeattn.experiments._report`. Re-running the same command resumes; bad input exits 2 with
one line; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import optuna
import yaml
from optuna.trial import TrialState
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from odeattn._errors import must
from odeattn.data import DatasetFileError
from odeattn.experiments._bench import (
    BenchConfig,
    bench_study,
    check_space,
    open_study,
    proxy_names,
    run_benchmark,
    trial_provenance,
)
from odeattn.experiments._provenance import pinned
from odeattn.experiments._report import ceiling, correlations, write_report
from odeattn.experiments._stats import fmt_ci
from odeattn.search import resolve_space
from odeattn.study import data_for

__all__ = ["ProgressLines", "add_bench_args", "bench_main", "print_report"]


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line with exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def add_bench_args(p: argparse.ArgumentParser) -> None:
    """The benchmark's flags."""
    p.add_argument("--space", required=True, help="search-space YAML (search_spaces/NAME.yaml)")
    p.add_argument("--n", type=int, required=True, help="architectures to sample")
    p.add_argument("--epochs", type=int, required=True, help="training epochs per run")
    p.add_argument("--seeds", type=int, required=True, help="training seeds per architecture")
    p.add_argument("--data", default="digits", help="dataset (default: digits)")
    p.add_argument("--model", default="digits_resnet", help="model family (default digits_resnet)")
    p.add_argument("--out", default="runs/proxy_benchmark", help="output folder (resumable)")
    p.add_argument("--sampler-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="architectures at once, one thread each")
    p.add_argument(
        "--model-kw",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fixed model keyword (YAML value), e.g. --model-kw adaptor=se; repeatable",
    )


def print_report(console: Console, corrs: list[dict], ceil: dict) -> None:
    """The correlation table and the noise-ceiling line."""
    t = Table(title=f"proxy vs mean accuracy (n={ceil['n']} architectures, {ceil['seeds']} seeds)")
    for h in ("proxy", "n", "Kendall τ [95% CI]", "Spearman ρ [95% CI]", "partial ρ | params"):
        t.add_column(h)
    for c in corrs:
        t.add_row(
            c["proxy"],
            str(c["n"]),
            fmt_ci(c["tau"], c["tau_lo"], c["tau_hi"]),
            fmt_ci(c["rho"], c["rho_lo"], c["rho_hi"]),
            fmt_ci(c["partial"], c["partial_lo"], c["partial_hi"]),
        )
    console.print(t)
    note = (
        "" if math.isfinite(ceil["tau"]) and ceil["tau"] >= 0.6 else " (below 0.6: weak evidence)"
    )
    console.print(
        "noise ceiling (Kendall τ between seeds' accuracies): "
        + fmt_ci(ceil["tau"], ceil["tau_lo"], ceil["tau_hi"])
        + note
    )


def _model_kw(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise must("--model-kw", "look like KEY=VALUE (e.g. adaptor=se)", item)
        out[key] = yaml.safe_load(value)
    return out


def _config(args: argparse.Namespace) -> BenchConfig:
    cfg = BenchConfig(
        model_kwargs=_model_kw(args.model_kw),
        space=args.space,
        n=args.n,
        epochs=args.epochs,
        seeds=args.seeds,
        data=args.data,
        out=args.out,
        model=args.model,
        sampler_seed=args.sampler_seed,
    )
    study = bench_study(cfg)
    resolve_space(study)  # a bad space file or model fails here, before anything trains
    data_for(study)  # as does a data set that is not on disk
    check_space(study, cfg)  # and a space the model cannot build (nothing written yet)
    open_study(cfg)  # as do settings other than those stored in --out
    return cfg


class ProgressLines:
    """One flushed stderr line per trained network (count/total, elapsed, time left), for when
    the output is a file or a pipe and the progress bar shows nothing. The first ``resumed``
    ticks (networks trained by an earlier run) make one line together."""

    def __init__(self, total: int, resumed: int = 0) -> None:
        self.total, self.resumed, self.done, self.t0 = total, resumed, 0, time.monotonic()

    def __call__(self) -> None:
        self.done += 1
        if self.done < self.resumed:
            return
        if self.done == self.resumed:
            line = f"resumed: {self.done}/{self.total} networks trained by an earlier run"
        else:
            spent = time.monotonic() - self.t0
            left = spent / (self.done - self.resumed) * (self.total - self.done)
            line = (
                f"trained {self.done}/{self.total} networks, {spent:.0f} s elapsed, "
                f"about {left:.0f} s left"
            )
        print(line, file=sys.stderr, flush=True)


def run_bench(cfg: BenchConfig, console: Console, jobs: int = 1) -> tuple[list[dict], dict]:
    """Run (or resume) with a progress bar, write the report, print it; (correlations, ceiling)."""
    total = cfg.n * cfg.seeds
    done = len(open_study(cfg).get_trials(states=(TrialState.COMPLETE,))) * cfg.seeds
    lines = None if console.is_terminal else ProgressLines(total, resumed=min(done, total))
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("training", total=total)

        def tick() -> None:
            bar.advance(task)
            if lines is not None:
                lines()

        rows = run_benchmark(cfg, tick=tick, jobs=jobs)
    corrs = correlations(rows, [*proxy_names(), "tns_end"])  # tns_end: trained, not zero-cost
    ceil = ceiling(rows, cfg.seeds)
    write_report(cfg.out, rows, corrs, ceil, trial_provenance(open_study(cfg)))
    print_report(console, corrs, ceil)
    console.print(f"files: {cfg.out}/values.csv correlations.csv summary.json scatter.png")
    console.print(f"dashboard: optuna-dashboard sqlite:///{cfg.out}/benchmark.db")
    return corrs, ceil


def bench_main(argv: list[str] | None = None, prog: str = "python -m odeattn.proxies") -> int:
    """Entry point of ``benchmark``; returns the exit status."""
    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    add_bench_args(sub.add_parser("benchmark", help="rank-correlate every proxy with accuracy"))
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console = Console(width=None if sys.stdout.isatty() else 140)
    try:
        if args.jobs < 1:  # before _config, which opens (creates) the study
            raise must("--jobs", "be >= 1", args.jobs)
        cfg = _config(args)
    except (ValueError, DatasetFileError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    try:
        with pinned(sys.argv[1:] if argv is None else argv, prog):
            run_bench(cfg, console, args.jobs)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to continue the benchmark", file=sys.stderr)
        return 130
    return 0
