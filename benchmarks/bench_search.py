"""Search backends: wall time and trials/hour of a study, and per-trial backend overhead.

Two measurements, one JSON object per case on stdout:

* ``study``: ``python -m odeattn.search <study>`` end to end (process start, data, training,
  summary, exports, plots) with the optuna backend at 1 and 2 workers and with the ray backend;
  ``trials_per_hour = n_trials / wall_s · 3600``, ``ratio_vs_optuna1`` = the optuna-1-worker wall
  time (same run) over this one. All three run the same study file with pruning removed (Ray runs
  no Optuna pruner; ``--keep-pruning`` gives optuna its pruner and ray ASHA on the same metric), so
  every trial does the same work.
* ``overhead``: the backend alone, with a no-op trial that reports ``--epochs`` epochs and returns
  the objectives. Each backend runs N1 and N2 trials; the marginal cost per trial is
  ``(t(N2) − t(N1)) / (N2 − N1)``, times the number of concurrent slots (a slot is busy that long
  per trial); ``share_of_10s_trial`` = that / 10 s (target ≤ 0.02). ``fixed_s`` is the cost
  of one invocation beyond the trials (Ray: init, actor start, shutdown).

    flock /tmp/odeattn-bench.lock python benchmarks/bench_search.py [--n-trials 12] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _machine() -> dict[str, Any]:
    import torch

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "optuna": optuna.__version__,
    }


def _study_file(src: Path, out: Path, backend: str, keep_pruning: bool) -> Path:
    d = yaml.safe_load(src.read_text())
    d["search_space"] = str((src.parent / d["search_space"]).resolve())
    pruning = d.pop("pruning", None)
    d["backend"] = backend
    if keep_pruning and pruning and backend == "optuna":
        d["pruning"] = pruning
    if keep_pruning and pruning and backend == "ray":
        d["ray"] = {"scheduler": "asha", "asha": {"metric": pruning.get("metric", "val_accuracy")}}
    out.write_text(yaml.safe_dump(d))
    return out


def _count(storage: str, name: str) -> dict[str, int]:
    from odeattn.search.backends.ray._storage import open_storage

    trials = optuna.load_study(study_name=name, storage=open_storage(storage)).get_trials()
    return {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")}


def bench_study(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows, ref = [], None
    src = (ROOT / args.study).resolve()
    for backend, workers in (("optuna", 1), ("optuna", 2), ("ray", 1)):
        if backend not in args.backends:
            continue
        case = tmp / f"{backend}{workers}"
        case.mkdir()
        f = _study_file(src, case / "study.yaml", backend, args.keep_pruning)
        cmd = [
            sys.executable,
            "-m",
            "odeattn.search",
            str(f),
            "--runs-dir",
            str(case / "runs"),
            "--n-trials",
            str(args.n_trials),
            "--epochs",
            str(args.epochs),
            "--quiet",
        ]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=case)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            rows.append(
                {
                    "case": "study",
                    "backend": backend,
                    "workers": workers,
                    "error": out.stderr[-1500:] or out.stdout[-1500:],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            continue
        name = yaml.safe_load(f.read_text())["name"]
        storage = (
            f"sqlite:///{case / 'runs' / name / 'study.db'}"
            if workers == 1 or backend == "ray"
            else str(case / "runs" / name / "journal.log")
        )
        if backend == "ray" and not (case / "runs" / name / "study.db").exists():
            storage = str(case / "runs" / name / "journal.log")
        counts = _count(storage, name)
        n = sum(counts.values())
        ref = ref or wall
        rows.append(
            {
                "case": "study",
                "study": args.study,
                "backend": backend,
                "workers": workers,
                "n_trials": n,
                "states": counts,
                "epochs": args.epochs,
                "wall_s": round(wall, 2),
                "trials_per_hour": round(n / wall * 3600, 1),
                "ratio_vs_optuna1": round(ref / wall, 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _noop_result(names: list[str]) -> dict[str, float]:
    return {n: 0.5 for n in names} | {"params": 1.0, "epochs_run": 1.0, "screened_out": 0.0}


def _noop_trial(epochs: int, names: list[str]):
    def trial_fn(study_cfg, params, report, *, trial=None, **_):
        for e in range(1, epochs + 1):
            report(e, {"val_accuracy": 0.5, "val_loss": 1.0, "train_loss": 1.0})
        return _noop_result(names)

    return trial_fn


def _optuna_loop(study, url: str, n: int, epochs: int) -> float:
    from odeattn.search.backends.optuna import _worker as _optuna
    from odeattn.search.trial import _replicates

    _replicates.run_trial = _noop_trial(epochs, study.objective_names)  # the loop, no training
    s = study.model_copy(update={"budget": study.budget.model_copy(update={"n_trials": n})})
    t0 = time.perf_counter()
    _optuna.worker_loop(s, url)
    return time.perf_counter() - t0


def _ray_loop(study, space, url: str, n: int, epochs: int) -> float:
    from odeattn.search.backends.ray import _study as _ray_study
    from odeattn.search.backends.ray import _tune as _ray

    t0 = time.perf_counter()
    _ray.run(
        study,
        url,
        study_name=study.name,
        objectives=list(zip(study.objective_names, study.directions)),
        space=space,
        n_trials=n,
        sample_fn=_ray_study.study_sample,
        trial_fn=_noop_trial(epochs, study.objective_names),
        storage_path=Path(url).parent / "ray",
    )
    return time.perf_counter() - t0


def _overhead_row(
    backend: str, t1: float, t2: float, n1: int, n2: int, slots: int, extra: dict[str, Any]
) -> dict[str, Any]:
    per = (t2 - t1) / (n2 - n1)
    return {
        "case": "overhead",
        "backend": backend,
        "n1": n1,
        "t_n1_s": round(t1, 3),
        "n2": n2,
        "t_n2_s": round(t2, 3),
        "slots": slots,
        "marginal_wall_per_trial_s": round(per, 4),
        "slot_s_per_trial": round(per * slots, 4),
        "share_of_10s_trial": round(per * slots / 10, 5),
        "fixed_s": round(t1 - n1 * per, 3),
        **extra,
    }


def bench_overhead(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    from odeattn.search.backends.optuna._worker import open_study
    from odeattn.search.backends.ray import _tune as _ray
    from odeattn.study._resolve import resolve_space
    from odeattn.study.config._load import load_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    f = _study_file((ROOT / args.study).resolve(), tmp / "noop.yaml", "optuna", False)
    rows = []
    n1, n2 = args.overhead_trials
    for kind in ("sqlite", "journal"):
        times = []
        for n in (n1, n2):
            d = tmp / f"oh-{kind}-{n}"
            d.mkdir()
            url = f"sqlite:///{d / 'study.db'}" if kind == "sqlite" else str(d / "journal.log")
            study = load_study(f, runs_dir=str(d))
            space = resolve_space(study)
            open_study(study, url, space)
            times.append(_optuna_loop(study, url, n, args.epochs))
        rows.append(_overhead_row("optuna", *times, n1, n2, 1, {"storage": kind}))
        print(json.dumps(rows[-1]), flush=True)
    if not _ray.ray_available():
        return rows
    ray = _ray._import_ray()
    t0 = time.perf_counter()
    _ray._init_ray(ray, None, None)
    init_s = time.perf_counter() - t0
    times = []
    for n in (n1, n2):
        d = tmp / f"oh-ray-{n}"
        d.mkdir()
        study = load_study(f, runs_dir=str(d))
        space = resolve_space(study)
        times.append(_ray_loop(study, space, str(d / "journal.log"), n, args.epochs))
    t0 = time.perf_counter()
    ray.shutdown()
    slots = os.cpu_count() or 1  # local Ray gets every CPU; 1 CPU per trial
    rows.append(
        _overhead_row(
            "ray",
            *times,
            n1,
            n2,
            slots,
            {
                "storage": "journal",
                "ray_init_s": round(init_s, 2),
                "ray_shutdown_s": round(time.perf_counter() - t0, 2),
            },
        )
    )
    print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", default="studies/lth4sa.yaml")
    p.add_argument("--n-trials", type=int, default=12)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--keep-pruning", action="store_true")
    p.add_argument("--overhead-trials", type=int, nargs=2, default=(5, 25))
    p.add_argument("--backends", nargs="+", default=["optuna", "ray"], choices=["optuna", "ray"])
    p.add_argument("--skip", choices=["study", "overhead"], action="append", default=[])
    args = p.parse_args()
    print(json.dumps({"case": "machine", **_machine()}), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as d:
        tmp = Path(d)
        if "overhead" not in args.skip:
            bench_overhead(args, tmp)
        if "study" not in args.skip:
            bench_study(args, tmp)


if __name__ == "__main__":
    main()
