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
from odeattn.data import DatasetFileError
from odeattn.experiments._claims import CLAIMS, SIZES
from odeattn.experiments._cli_bench import OneLineParser, add_bench_args, bench_main
from odeattn.experiments._efficiency import EffConfig, curves, preflight, run_efficiency
from odeattn.experiments._plots import curves_plot
from odeattn.experiments._stats import fmt_ci, mean_ci
from odeattn.search import interrupt_once
from odeattn.search.trial import json_safe


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
    e.add_argument(
        "--studies",
        default="single,multi",
        help="single: TPE on accuracy (best-so-far); multi: TPE on (accuracy, log10 params) (HV)",
    )
    e.add_argument("--jobs", type=int, default=1, help="runs at once, one torch thread each")
    add_bench_args(sub.add_parser("benchmark", help="the proxy benchmark (§2)"))
    return p


def _run_claim(name: str, size_name: str, out: str, console: Console) -> None:
    title, fn = CLAIMS[name]
    size = SIZES[size_name]
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    res = fn(folder, size)
    res |= {"claim": title, "size": size.__dict__, "size_name": size_name}
    (folder / "result.json").write_text(json.dumps(json_safe(res), indent=1, default=float))
    console.print(f"[bold]{name}[/]: {title}")
    console.print(f"held: {res['held']}. {res['verdict']}")
    console.print(f"files: {folder}/result.json and {folder}/*.png")


def _paired(final: dict[str, list[float]]) -> dict[str, list[float]]:
    """Differences paired by sampler seed: every arm − none, and every proxy arm − random."""
    pairs = [(a, "none") for a in final if a != "none"]
    pairs += [(a, "random") for a in final if a not in ("none", "random")]
    return {
        f"{a} - {b}": mean_ci([x - y for x, y in zip(final[a], final[b], strict=True)])
        for a, b in pairs
        if b in final
    }


def _efficiency(cfg: EffConfig, console: Console) -> None:
    runs = run_efficiency(cfg, tick=lambda: console.print(".", end=""))
    console.print()
    every = [
        e["params"] for arms in runs.values() for evs in arms.values() for ev in evs for e in ev
    ]
    ref_cost = 1.1 * math.log10(max(every, default=10.0))  # one box for every study and arm
    summary: dict[str, dict] = {"config": cfg.__dict__, "ref_cost": ref_cost}
    for kind, events in runs.items():
        c = {arm: curves(evs, cfg.seconds, ref_cost) for arm, evs in events.items()}
        t = next(iter(c.values()))["t"]
        title = f"{kind}-objective TPE, {cfg.seeds} seeds, {cfg.seconds:g} s each"
        curves_plot(Path(cfg.out) / f"efficiency_{kind}.png", t, c, title)
        console.print(f"[bold]{kind}-objective TPE[/] (n = {cfg.seeds} sampler seeds)")
        final = {
            arm: {"best": list(cc["best"][:, -1]), "hv": list(cc["hv"][:, -1])}
            for arm, cc in c.items()
        }
        for arm in c:
            n_trained = [len(ev) for ev in events[arm]]
            console.print(
                f"{arm:>10}: best val. accuracy at T {fmt_ci(*mean_ci(final[arm]['best']), digits=3)}, "
                f"hypervolume {fmt_ci(*mean_ci(final[arm]['hv']), digits=3)}, "
                f"trained per run {fmt_ci(*mean_ci(n_trained), digits=1)}"
            )
        diffs = {m: _paired({a: f[m] for a, f in final.items()}) for m in ("best", "hv")}
        for m, label in (("best", "best accuracy"), ("hv", "hypervolume")):
            for pair, ci in diffs[m].items():
                noise = " — within noise" if ci[1] <= 0 <= ci[2] else ""
                console.print(f"{pair:>18}: {label} {fmt_ci(*ci, digits=3)} (paired){noise}")
        summary[kind] = {"final": final, "paired": diffs}
    (Path(cfg.out) / "summary.json").write_text(json.dumps(json_safe(summary), indent=1))
    console.print(f"files: {cfg.out}/efficiency_*.png, summary.json")


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
                data=args.data,
                model=args.model,
                recipe=args.recipe,
                device=args.device,
                studies=tuple(k.strip() for k in args.studies.split(",") if k.strip()),
                jobs=args.jobs,
            )
            preflight(cfg)  # a bad space, model or data set fails here, before anything runs
    except (ValueError, DatasetFileError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            _run_claim(args.name, "quick" if args.quick else args.size, args.out, console)
        else:
            interrupt_once()  # SIGTERM as Ctrl-C: the running runs stop, the stored ones stay
            _efficiency(cfg, console)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
