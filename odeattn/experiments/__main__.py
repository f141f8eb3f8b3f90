"""``python -m odeattn.experiments``: the evidence of issues 14, 19 and 21, one command each.

    python -m odeattn.experiments list
    python -m odeattn.experiments run NAME|all|oneshot [--quick] [--jobs 2] [--out runs/evidence]
    python -m odeattn.experiments efficiency --space S.yaml --seconds T [--seeds 5] [--jobs 2] …
    python -m odeattn.experiments benchmark --space S.yaml --n N --epochs E --seeds S [--jobs 2]
    python -m odeattn.experiments report [--collect OUT …] [--check]   # docs/results.md tables

Every network trains on one torch thread (``--jobs`` runs side by side in processes), so a seed
names the same network on any load, and every result file records its provenance. Every command
resumes: re-running it trains only what is missing. ``all`` is the papers' claims, ``oneshot``
issue 19's three parts. Bad input exits 2 with one line; Ctrl-C
exits 130 (re-run the same command to continue).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import optuna
from rich.console import Console

from odeattn._errors import must, unknown_name
from odeattn.data import DatasetFileError
from odeattn.experiments._cli_bench import OneLineParser, add_bench_args, bench_main
from odeattn.experiments._eff_summary import efficiency_summary
from odeattn.experiments._efficiency import EffConfig, preflight
from odeattn.experiments._page import page_main
from odeattn.experiments._provenance import pinned, provenance
from odeattn.experiments._registry import CLAIMS, ONESHOT
from odeattn.experiments._sizes import SIZES, Ctx
from odeattn.search import interrupt_once
from odeattn.search.trial import json_safe

PROG = "python -m odeattn.experiments"


def _parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the claims")
    r = sub.add_parser("run", help="reproduce one claim (or all)")
    r.add_argument("name")
    r.add_argument(
        "--size",
        choices=list(SIZES),
        default="full",
        help="full: the CPU size of the plan; quick: 3 seeds, 1 epoch (tests); paper: ResNet-164",
    )
    r.add_argument("--quick", action="store_true", help="same as --size quick")
    r.add_argument("--out", default="runs/evidence")
    r.add_argument("--jobs", type=int, default=1, help="networks at once, one torch thread each")
    e = sub.add_parser("efficiency", help="TPE with each screen at equal wall time (§3)")
    e.add_argument("--space", required=True)
    e.add_argument("--seconds", type=float, required=True, help="wall time per run")
    e.add_argument("--seeds", type=int, default=5)
    e.add_argument("--epochs", type=int, default=3)
    e.add_argument("--arms", default="none,tns,random,synflow")
    e.add_argument("--keep-fraction", type=float, default=0.5, help="screen keeps this share")
    e.add_argument("--warmup", type=int, default=4, help="candidates always trained first")
    e.add_argument("--out", default="runs/evidence/efficiency")
    for flag, default in (("data", "digits"), ("model", "digits_resnet"), ("recipe", "digits")):
        e.add_argument(f"--{flag}", default=default)
    e.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    e.add_argument(
        "--studies",
        default="single,multi",
        help="single: TPE on accuracy (best-so-far); multi: TPE on (accuracy, log10 params) (HV)",
    )
    e.add_argument("--jobs", type=int, default=1, help="runs at once, one torch thread each")
    e.add_argument(
        "--retrain-seeds",
        default="100,101,102",
        help="fresh seeds each single run's best is retrained with ('' for none)",
    )
    add_bench_args(sub.add_parser("benchmark", help="the proxy benchmark (§2)"))
    sub.add_parser("report", help="rewrite the tables of docs/results.md", add_help=False)
    return p


def _run_claim(name: str, size_name: str, out: str, jobs: int, console: Console) -> None:
    title, fn = {**CLAIMS, **ONESHOT}[name]
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    res = fn(Ctx(folder, SIZES[size_name], jobs))
    res |= {"claim": title, "size": SIZES[size_name].__dict__, "size_name": size_name}
    res["provenance"] = provenance()
    (folder / "result.json").write_text(json.dumps(json_safe(res), indent=1, default=float))
    console.print(f"[bold]{name}[/]: {title}")
    console.print(f"verdict: {res['verdict']}. {res['summary']}")
    console.print(f"files: {folder}/result.json and {folder}/*.png")


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise must(
            "--retrain-seeds", "be comma-separated integers, e.g. 100,101,102", text
        ) from None


def _eff_config(args) -> EffConfig:
    cfg = EffConfig(
        args.space,
        args.seconds,
        args.seeds,
        args.epochs,
        tuple(a.strip() for a in args.arms.split(",") if a.strip()),
        args.keep_fraction,
        args.warmup,
        out=args.out,
        data=args.data,
        model=args.model,
        recipe=args.recipe,
        device=args.device,
        studies=tuple(k.strip() for k in args.studies.split(",") if k.strip()),
        jobs=args.jobs,
        fresh=_seeds(args.retrain_seeds),
    )
    preflight(cfg)  # a bad space, model or data set fails here, before anything runs
    return cfg


def _validate(args):
    if args.command == "run":
        names = [*CLAIMS, *ONESHOT, "all", "oneshot"]
        if args.name not in names:
            raise unknown_name("claim", args.name, names, f"See `{PROG} list`.")
        if args.jobs < 1:
            raise must("--jobs", "be >= 1", args.jobs)
        size = "quick" if args.quick else args.size
        if size == "paper" and (args.name == "oneshot" or args.name in ONESHOT):
            raise must("--size", "be full or quick for the one-shot claims", size)
    return _eff_config(args) if args.command == "efficiency" else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["benchmark"]:
        return bench_main(argv, prog=PROG)
    if argv[:1] == ["report"]:
        return page_main(argv[1:], prog=f"{PROG} report")
    args = _parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console = Console(width=None if sys.stdout.isatty() else 140)
    if args.command == "list":
        named = {**CLAIMS, **ONESHOT}
        width = max(map(len, named))
        for name, (title, _) in named.items():
            console.print(f"{name:>{width}}  {title}")
        return 0
    try:
        cfg = _validate(args)
    except (ValueError, DatasetFileError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    try:
        with pinned(argv, PROG):
            if args.command == "run":
                size = "quick" if args.quick else args.size
                group = {"all": list(CLAIMS), "oneshot": list(ONESHOT)}
                for name in group.get(args.name, [args.name]):
                    _run_claim(name, size, args.out, args.jobs, console)
            else:
                interrupt_once()  # SIGTERM as Ctrl-C: the running runs stop, the stored ones stay
                efficiency_summary(cfg, console)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
