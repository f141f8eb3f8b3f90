"""The search at scale: odeattn's own cost per trial against the trial index (issue 20).

One cell = one study of ``--trials`` N trials run by ``--workers`` W worker processes on one
storage, through odeattn's real worker loop (``backends.optuna.worker_loop``: budget check, ask,
surplus check, sampling, duplicate lookup, heartbeat, ``train_replicates``, pruning with the
``dominated`` rule, user attributes, tell) with an objective that returns at once
(``_scale_fixture``; ``--artifacts`` also writes every trial's artifacts). Afterwards the study
is read back (states, duplicates served, the budget), the end of a search is timed (finished
trials, the front, the summary table and files, ``best/``, the plots; in a child process with a
time limit) and the real optuna-dashboard is started on 127.0.0.1 and read over HTTP.

    python benchmarks/bench_scale.py --trials N --workers W --storage sqlite|journal|postgresql \
        [--sampler tpe|nsga2|random] [--history H] [--replicates 1|2] [--artifacts] --out FILE.json
    python benchmarks/bench_scale.py --plot A.json B.json ... --png FILE.png
    python benchmarks/bench_scale.py --bookkeeping 100 1000 10000 [--out FILE.json]
    python benchmarks/bench_scale.py --sampler-cost 100 1000 3000 10000 [--out FILE.json]
    python benchmarks/bench_scale.py --results-cost 100 1000 10000 [--out FILE.json]

JSON: ``odeattn_ms_per_trial`` / ``sampler_ms_per_trial`` (median over each of ``--buckets``
equal buckets of the trial number; odeattn = wall time of one turn of the loop minus the time
inside the sampler's methods), their CPU-time versions (this worker process only: the database
server's CPU is not in it), ``at_100_ms`` (median over trials 50–149), ``at_end_ms`` (the last
100 trials) and their ratio, counts, wall time, database size, ``results_s``, ``dashboard``,
the commit, threads, machine and the load average sampled during the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
for _k in ("ODEATTN_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_k, "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import _scale_fixture as fixture  # noqa: E402
import _scale_services as services  # noqa: E402
from _common import cpu_name  # noqa: E402


def _commit() -> str:
    if os.environ.get("ODEATTN_COMMIT"):  # a snapshot of a commit (git archive) names it
        return os.environ["ODEATTN_COMMIT"]

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain") else "")


def _url(kind: str, tmp: Path, pg: str | None) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'study.db'}"
    return str(tmp / "journal.log") if kind == "journal" else str(pg)


def _create(study_file: Path, url: str) -> None:
    """Create the study as ``run_search`` does (open, stamp), so the workers only load it."""
    from odeattn.search.backends.optuna import open_study
    from odeattn.search.storage import stamp_study
    from odeattn.study import load_study, resolve_space

    study = load_study(str(study_file))
    space = resolve_space(study)
    stamp_study(study, space, open_study(study, url, space))


def _run_workers(args: argparse.Namespace, study_file: Path, url: str, tmp: Path) -> dict:
    """Start W workers, wait (sampling the load average) until they end or the time limit."""
    ctx = mp.get_context("spawn")
    logs = [tmp / f"worker{i}.jsonl" for i in range(args.workers)]
    procs = [
        ctx.Process(
            target=fixture.worker, args=(str(study_file), url, i, str(logs[i]), args.artifacts)
        )
        for i in range(args.workers)
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    load, timed_out = [], False
    while any(p.is_alive() for p in procs):
        if time.perf_counter() - t0 > args.timeout:
            timed_out = True
            for p in procs:
                p.kill()
            break
        load.append(os.getloadavg()[0])
        procs[0].join(timeout=2.0) if procs[0].is_alive() else time.sleep(2.0)
    for p in procs:
        p.join()
    wall = time.perf_counter() - t0
    recs = [json.loads(line) for f in logs if f.exists() for line in f.read_text().splitlines()]
    return {
        "wall_s": wall,
        "timed_out": timed_out,
        "exit_codes": [p.exitcode for p in procs],
        "load_samples": load,
        "records": recs,
    }


KEYS = ("odeattn_ms", "sampler_ms", "odeattn_cpu_ms", "sampler_cpu_ms")


def _buckets(recs: list[dict], n: int, k: int, key: str, start: int = 0) -> list[float | None]:
    out = []
    for b in range(k):
        lo, hi = start + b * n / k, start + (b + 1) * n / k
        vals = [r[key] for r in recs if lo <= r["n"] < hi]
        out.append(round(statistics.median(vals), 3) if vals else None)
    return out


def _timings(recs: list[dict], n: int, k: int, start: int = 0) -> dict[str, Any]:
    """Per-bucket medians over the trials numbered start .. start + n (start: --prefill)."""
    trials = [r for r in recs if not r["surplus"] and r["n"] >= 0]
    for r in trials:
        r["odeattn_ms"] = r["wall_ms"] - r["sampler_ms"]
        r["odeattn_cpu_ms"] = max(0.0, r["cpu_ms"] - r["sampler_cpu_ms"])
    at100 = [r["odeattn_ms"] for r in trials if 50 <= r["n"] < 150]
    end = [r["odeattn_ms"] for r in trials if r["n"] >= start + n - 100]
    a, e = (statistics.median(v) if v else None for v in (at100, end))
    return {
        "buckets": [[start + round(b * n / k), start + round((b + 1) * n / k)] for b in range(k)],
        **{f"{key}_per_trial": _buckets(trials, n, k, key, start) for key in KEYS},
        **{f"median_{key}": round(statistics.median(r[key] for r in trials), 3) for key in KEYS},
        "at_100_ms": a,
        "at_end_ms": e,
        "ratio_end_vs_100": round(e / a, 3) if a and e else None,
        "timed_trials": len(trials),
        "surplus_asks": sum(r["surplus"] for r in recs),
    }


def _trained_again(ts: list[Any], first: int) -> int:
    """Trainings of a configuration another trial had trained, among the trials numbered
    ``first`` or more (a trained trial: COMPLETE or PRUNED, not served as a duplicate); the
    --prefill trials (numbered below ``first``, random draws that may repeat among themselves)
    count as trained before, not as trained again."""
    new: dict[Any, int] = {}
    old: set[Any] = set()
    for t in ts:
        if t.state.name in ("COMPLETE", "PRUNED") and "duplicate_of" not in t.user_attrs:
            key = frozenset(t.params.items())
            if t.number < first:
                old.add(key)
            else:
                new[key] = new.get(key, 0) + 1
    return sum(c - (key not in old) for key, c in new.items())


def _read_back(study_file: Path, url: str, n: int, first: int = 0) -> dict[str, Any]:
    """States, duplicates, the budget, and configurations trained more than once (among the
    trials numbered ``first`` or more: --prefill's trials are random draws).

    ``surplus``: asks that lost the race for the last budget slots (workers that passed the
    budget check together), FAIL labelled ``odeattn_surplus``, never trained and not counted: the
    intended end of those workers, at most one per worker. ``fail_not_surplus``: any other FAIL
    (none is expected of the instant objective). ``waited``: trials handed a configuration another
    worker was training at that moment, which waited for it and were served its result."""
    import optuna

    from odeattn.search.storage import budget_used, make_storage
    from odeattn.study import load_study

    study = load_study(str(study_file))
    s = optuna.load_study(study_name=study.name, storage=make_storage(url))
    ts = s.get_trials(deepcopy=False)
    states = {st: sum(t.state.name == st for t in ts) for st in ("COMPLETE", "PRUNED", "FAIL")}
    states |= {st: sum(t.state.name == st for t in ts) for st in ("RUNNING", "WAITING")}
    surplus = sum(bool(t.user_attrs.get("odeattn_surplus")) for t in ts)
    return {
        "trials_stored": len(ts),
        "states": states,
        "surplus": surplus,
        "fail_not_surplus": states["FAIL"] - surplus,
        "duplicates_served": sum("duplicate_of" in t.user_attrs for t in ts),
        "waited": sum("odeattn_waited_for" in t.user_attrs for t in ts),
        "trained_more_than_once": _trained_again(ts, first),
        "budget_used": budget_used(s),
        "budget_exact": budget_used(s) == n,
        "numbers_contiguous": sorted(t.number for t in ts) == list(range(len(ts))),
    }


def _results_child(study_file: str, url: str, out: str) -> None:
    """The end of a search, timed step by step (a child process: the parent bounds it)."""
    import optuna

    from odeattn.search.results import (
        best_of,
        export_best,
        finished,
        study_plots,
        summary_table,
        write_summary,
    )
    from odeattn.search.storage import make_storage
    from odeattn.study import load_study

    study = load_study(study_file)
    s = optuna.load_study(study_name=study.name, storage=make_storage(url))
    times: dict[str, Any] = {}
    for name, fn in (
        ("read_trials", lambda: s.get_trials(deepcopy=False)),
        ("finished", lambda: finished(study, s)),
        ("front", lambda: best_of(study, s)),
        ("summary", lambda: write_summary(study, s, summary_table(study, s))),
        ("export_best", lambda: export_best(study, s)),
        ("plots", lambda: study_plots(study, s)),
    ):
        t0 = time.perf_counter()
        got = fn()
        times[f"{name}_s"] = round(time.perf_counter() - t0, 3)
        Path(out).write_text(json.dumps(times))
    times["front_size"] = len(best_of(study, s))
    times["finished"] = len(finished(study, s))
    times["best_files"] = len(list((study.run_dir / "best").glob("*.yaml")))
    del got
    Path(out).write_text(json.dumps(times))


def _results(study_file: Path, url: str, tmp: Path, limit: float) -> dict[str, Any]:
    out = tmp / "results.json"
    p = mp.get_context("spawn").Process(
        target=_results_child, args=(str(study_file), url, str(out))
    )
    p.start()
    p.join(limit)
    timed_out = p.is_alive()
    if timed_out:
        p.kill()
        p.join()
    got = json.loads(out.read_text()) if out.exists() else {}
    return got | {"timed_out": timed_out, "limit_s": limit, "exit_code": p.exitcode}


def _machine() -> dict[str, Any]:
    import optuna
    import sqlalchemy

    return {
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "optuna": optuna.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "threads": {k: os.environ.get(k) for k in ("ODEATTN_THREADS", "OMP_NUM_THREADS")},
    }


def _prefill(url: str, n: int) -> None:
    import numpy as np
    import optuna
    from _scale_bookkeeping import _trial

    from odeattn.search.storage import make_storage

    s = optuna.load_study(study_name="scale", storage=make_storage(url))
    rng = np.random.default_rng(0)
    s.add_trials([_trial(rng) for _ in range(n)])


def _cell_study(stack: contextlib.ExitStack, args: argparse.Namespace) -> tuple[Path, str, Path]:
    """A cell's temporary folder, storage URL (its own PostgreSQL server where asked) and study
    file, the study created (and prefilled with ``--prefill`` finished trials); closed by
    ``stack``."""
    tmp = Path(
        stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.tmp_dir))
    )
    pg = stack.enter_context(services.postgres()) if args.storage == "postgresql" else None
    url = _url(args.storage, tmp, pg)
    f = fixture.write_study(
        tmp,
        ROOT / "studies" / "lth4sa.yaml",
        n_trials=args.trials + args.prefill,
        sampler=args.sampler,
        replicates=args.replicates,
        history=args.history,
    )
    _create(f, url)
    if args.prefill:  # a study that already holds this many finished trials
        _prefill(url, args.prefill)
    return tmp, url, f


def profile_cell(args: argparse.Namespace) -> dict[str, Any]:
    """``--profile``: one in-process worker of a cell under cProfile (``--pstats``: also the
    raw statistics, for ``python -m pstats``)."""
    with contextlib.ExitStack() as stack:
        tmp, url, f = _cell_study(stack, args)
        got = fixture.profile(str(f), url, str(tmp / "w.jsonl"), args.pstats)
        keys = ("trials", "prefill", "storage", "sampler", "replicates", "history")
        cell = {"cell": {k: getattr(args, k) for k in keys}, "commit": _commit()}
        return cell | {"machine": _machine(), "load": os.getloadavg(), "profile": got}


def run_cell(args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        tmp, url, study_file = _cell_study(stack, args)
        load0 = os.getloadavg()
        run = _run_workers(args, study_file, url, tmp)
        cell: dict[str, Any] = {
            "cell": {k: getattr(args, k) for k in ("trials", "workers", "storage", "sampler")}
            | {"replicates": args.replicates, "artifacts": args.artifacts, "tmp": str(tmp)}
            | {"history": args.history, "prefill": args.prefill},
            "commit": _commit(),
            "machine": _machine(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "load_before": load0,
            "load_during": _load_summary(run["load_samples"]),
            "wall_s": round(run["wall_s"], 2),
            "timed_out": run["timed_out"],
            "exit_codes": run["exit_codes"],
            "trials_per_s": round(args.trials / run["wall_s"], 2),
        }
        cell |= _timings(run["records"], args.trials, args.buckets, args.prefill)
        cell["read_back"] = _read_back(study_file, url, args.trials + args.prefill, args.prefill)
        cell["database_bytes"] = services.database_bytes(url)
        if not args.no_results:
            cell["results_s"] = _results(study_file, url, tmp, args.results_timeout)
        if not args.no_dashboard:
            arts = tmp / "runs" / "scale" / "artifacts"
            half = args.prefill + args.trials // 2
            cell["dashboard"] = services.dashboard_times(url, arts, "scale", half, 300)
        cell["load_after"] = os.getloadavg()
        return cell


def _load_summary(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {}
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples)}


def _storage_free(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The in-memory measurements: the loop's bookkeeping, the samplers' ask, the results."""
    import _scale_bookkeeping as free

    if args.bookkeeping:
        return free.bookkeeping(args.bookkeeping)
    if args.sampler_cost:
        return free.sampler_cost(args.sampler_cost, ["random", "nsga2", "tpe", "tpe-history-1000"])
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.tmp_dir) as d:
        f = fixture.write_study(
            Path(d), ROOT / "studies" / "lth4sa.yaml", n_trials=1, sampler="tpe", replicates=1
        )
        return free.results_cost(str(f), args.results_cost)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--storage", choices=["sqlite", "journal", "postgresql"], default="sqlite")
    p.add_argument("--sampler", choices=["tpe", "nsga2", "random"], default="tpe")
    p.add_argument("--replicates", type=int, choices=[1, 2], default=1)
    p.add_argument("--history", type=int, help="sampler.history (tpe): the sampler's window")
    p.add_argument("--artifacts", action="store_true", help="write every trial's artifacts")
    p.add_argument("--buckets", type=int, default=10)
    p.add_argument("--timeout", type=float, default=3600, help="limit of the workers (s)")
    p.add_argument("--results-timeout", type=float, default=600)
    p.add_argument("--no-results", action="store_true")
    p.add_argument("--no-dashboard", action="store_true")
    p.add_argument("--profile", action="store_true", help="one in-process worker under cProfile")
    p.add_argument("--pstats", type=Path, help="with --profile: write the raw statistics here")
    p.add_argument(
        "--prefill", type=int, default=0, help="finished trials in the study before the run"
    )
    p.add_argument(
        "--tmp-dir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the SQLite / journal file and the run folder live (default: tmpfs, so the "
        "disk's fsync is not what is measured)",
    )
    p.add_argument("--out", type=Path)
    p.add_argument("--plot", type=Path, nargs="+", help="draw these JSON files (with --png)")
    p.add_argument(
        "--results-cost",
        type=int,
        nargs="+",
        help="only the end of a search (summary, front, best/, plots), in memory, at these sizes",
    )
    p.add_argument(
        "--sampler-cost",
        type=int,
        nargs="+",
        help="only the samplers' ask, in memory, at these numbers of finished trials",
    )
    p.add_argument(
        "--bookkeeping",
        type=int,
        nargs="+",
        help="only the loop's bookkeeping, before and after issue 20, at these study sizes",
    )
    p.add_argument("--png", type=Path)
    args = p.parse_args()
    if args.plot:
        from _scale_plot import plot

        plot(args.plot, args.png or Path("scale.png"))
        return
    if args.bookkeeping or args.sampler_cost or args.results_cost:
        rows = {"commit": _commit(), "machine": _machine(), "load": os.getloadavg()}
        rows["rows"] = _storage_free(args)
        text = json.dumps(rows, indent=1)
        print(text) if args.out is None else args.out.write_text(text + "\n")
        return
    if args.profile:
        text = json.dumps(profile_cell(args), indent=1, default=str)
        print(text) if args.out is None else args.out.write_text(text + "\n")
        return
    cell = run_cell(args)
    text = json.dumps(cell, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    short = {k: cell[k] for k in ("cell", "wall_s", "at_100_ms", "at_end_ms", "ratio_end_vs_100")}
    print(json.dumps(short | {"read_back": cell["read_back"]}), flush=True)


if __name__ == "__main__":
    main()
