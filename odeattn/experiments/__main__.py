"""``python -m odeattn.experiments``: the evidence of issue 14, one command each.

    python -m odeattn.experiments list
    python -m odeattn.experiments run NAME [--quick] [--out runs/evidence]   # a claim of §4
    python -m odeattn.experiments efficiency --space S.yaml --seconds T [--seeds 5] [--arms …]
    python -m odeattn.experiments benchmark --space S.yaml --n N --epochs E --seeds S  # §2

Every command resumes: re-running it trains only what is missing. Bad input exits 2 with one
line; Ctrl-C exits 130 (re-run the same command to continue).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import optuna
from rich.console import Console

from odeattn._errors import unknown_name
from odeattn.experiments._claims import CLAIMS, SIZES
from odeattn.experiments._cli_bench import OneLineParser, add_bench_args, bench_main
from odeattn.experiments._efficiency import EffConfig, curves, run_efficiency
from odeattn.experiments._plots import curves_plot
from odeattn.experiments._stats import fmt_ci, mean_ci


def _parser() -> OneLineParser:
    p = OneLineParser(prog="python -m odeattn.experiments", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the claims")
    r = sub.add_parser("run", help="reproduce one claim")
    r.add_argument("name")
    r.add_argument(
        "--size",
        choices=["quick", "full", "paper"],
        default="full",
        help="quick: 3 seeds, 1 epoch (tests); full: the CPU size; paper: ResNet-164 CIFAR-10 (GPU)",
    )
    r.add_argument("--quick", action="store_true", help="same as --size quick")
    r.add_argument("--out", default="runs/evidence")
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
    add_bench_args(sub.add_parser("benchmark", help="the proxy benchmark (§2)"))
    return p


def _run_claim(name: str, size_name: str, out: str, console: Console) -> None:
    title, fn = CLAIMS[name]
    size = SIZES[size_name]
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    res = fn(folder, size)
    res |= {"claim": title, "size": size.__dict__, "size_name": size_name}
    (folder / "result.json").write_text(json.dumps(res, indent=1, default=float))
    console.print(f"[bold]{name}[/]: {title}")
    console.print(f"held: {res['held']}. {res['verdict']}")
    console.print(f"files: {folder}/result.json and {folder}/*.png")


def _efficiency(cfg: EffConfig, console: Console) -> None:
    events = run_efficiency(cfg, tick=lambda: console.print(".", end=""))
    console.print()
    ref = max(max((e["params"] for ev in evs for e in ev), default=10.0) for evs in events.values())
    ref_cost = 1.1 * math.log10(ref)
    c = {arm: curves(evs, cfg.seconds, ref_cost) for arm, evs in events.items()}
    t = next(iter(c.values()))["t"]
    curves_plot(
        Path(cfg.out) / "efficiency.png", t, c, f"TPE, {cfg.seeds} seeds, {cfg.seconds:g} s each"
    )
    for arm, cc in c.items():
        final = cc["best"][:, -1]
        n_trained = [len(ev) for ev in events[arm]]
        console.print(
            f"{arm:>10}: best val. accuracy at T {fmt_ci(*mean_ci(list(final)), digits=3)}, "
            f"hypervolume {fmt_ci(*mean_ci(list(cc['hv'][:, -1])), digits=3)}, "
            f"trained per run {fmt_ci(*mean_ci(n_trained), digits=1)} (n={len(final)} seeds)"
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["benchmark"]:
        return bench_main(argv, prog="python -m odeattn.experiments")
    args = _parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console = Console(width=None if sys.stdout.isatty() else 140)
    try:
        if args.command == "list":
            for name, (title, _) in CLAIMS.items():
                console.print(f"{name:>14}  {title}")
            return 0
        if args.command == "run" and args.name not in CLAIMS:
            raise unknown_name(
                "claim", args.name, CLAIMS, "See `python -m odeattn.experiments list`."
            )
        if args.command == "efficiency":
            arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
            cfg = EffConfig(
                args.space,
                args.seconds,
                args.seeds,
                args.epochs,
                arms,
                args.keep_fraction,
                args.warmup,
                out=args.out,
            )
    except ValueError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            _run_claim(args.name, "quick" if args.quick else args.size, args.out, console)
        else:
            _efficiency(cfg, console)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
