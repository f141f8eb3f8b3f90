"""The GPU check's run and report: which steps run, the JSON file, the summary and its table.

The summary turns the measured epoch time of CIFAR-10 ResNet-164 into the paper-scale hours of
docs/results.md §4 (runs × epochs × epoch time; an adaptor's epoch scaled from the plain one by
the measured training images/s), beside the estimates written there before any GPU was lent.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _gpu_run import NEEDS, limit_of, missing_modules, run_steps, run_tests, source_id
from _gpu_steps import MODELS, STEPS

# docs/results.md §4: experiment, runs per model, epochs a run, the estimate written there
PAPER = (
    (
        "claims 1, 2, 6 (plain / SE / StepNet, 3 seeds)",
        {"resnet164": 3, "se": 3, "stepnet": 3},
        164,
        "9–18 h",
    ),
    ("claim 4 (LTH4SA; counted as SE-ResNet-164)", {"se": 6}, 164, "+6–12 h"),
    ("claim 5 (DIA-LSTM shared vs per block)", {"dia": 6}, 164, "8–16 h"),
    (
        "claim 3 / §2 (24 architectures × 2 seeds; counted as ResNet-164)",
        {"resnet164": 48},
        30,
        "8–16 h",
    ),
)


def _usage(msg: str) -> None:
    print(f"gpu_check: {msg}", file=sys.stderr)
    sys.exit(2)


def _selected(spec: str) -> list[str]:
    """The steps to run, in their order: all, or ``--steps`` (``env`` always, for the device)."""
    names = ["tests", *STEPS]
    if not spec:
        return names
    asked = [s.strip() for s in spec.split(",") if s.strip()]
    for s in asked:
        if s not in names:
            near = difflib.get_close_matches(s, names, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; valid: {', '.join(names)}"
            _usage(f"`--steps` must name steps of the check, but got {s!r}{hint}")
    return [n for n in names if n in asked or n == "env"]


def _preflight(args: argparse.Namespace) -> dict[str, str]:
    """Usage errors before anything runs; the modules this Python lacks."""
    missing = missing_modules()
    if "torch" in missing:
        _usage(
            f"{sys.executable} cannot import torch: install torch first (README § GPU "
            "install), or point PYTHON= at an interpreter that has it"
        )
    if Path(args.out).is_dir():
        _usage(f"`--out` must be a file path, but {args.out!r} is a directory")
    if not args.cpu_smoke:
        import torch

        if not torch.cuda.is_available():
            _usage("no CUDA device here; run it on a GPU machine, or with --cpu-smoke")
    return missing


def check(args: argparse.Namespace) -> int:
    """Run the check, write the JSON, print the table; 1 when a test or a step failed."""
    names, missing = _selected(args.steps), _preflight(args)
    smoke, t0, started = args.cpu_smoke, time.monotonic(), datetime.now(UTC)
    deadline = t0 + args.deadline - 5  # 5 s to summarise and write
    steps: dict[str, dict] = {}
    for n in names:
        lacking = [m for m in NEEDS.get(n.split("_")[0], ()) if m in missing]
        if lacking:
            steps[n] = {"status": "skipped", "reason": f"missing module {', '.join(lacking)}"}
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        if "tests" in names and "tests" not in steps:
            steps["tests"] = run_tests(smoke, deadline, Path(tmp))
        todo = [n for n in names if n != "tests" and n not in steps]
        steps |= run_steps(todo, "cpu-smoke" if smoke else "gpu", deadline, Path(tmp))
    report = _report(args, steps, missing, started, time.monotonic() - t0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.tmp")
    tmp_out.write_text(json.dumps(_finite_only(report), indent=1, allow_nan=False) + "\n")
    tmp_out.replace(out)
    print(table(report))
    print(f"written: {out}")
    return int(any(s["status"] in ("failed", "crashed") for s in steps.values()))


def _report(args, steps: dict, missing: dict, started: datetime, wall: float) -> dict:
    results = {n: s.pop("result") for n, s in steps.items() if "result" in s}
    for n, s in steps.items():
        if n != "tests":
            s.setdefault("limit_s", limit_of(n, args.cpu_smoke))
        if s["status"] == "failed" and n in results:
            s["reason"] = results.pop(n)["error"]
    env = results.get("env", {})
    return {
        "check": "odeattn benchmarks/gpu_check.py",
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
        "device": env.get("device"),
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_s": wall,
        "deadline_s": args.deadline,
        "source": source_id(),
        "missing_modules": missing,
        "tests": steps.get("tests", {"status": "skipped", "reason": "not selected"}),
        "steps": {n: s for n, s in steps.items() if n != "tests"},
        "skipped": [
            {"step": n, "status": s["status"], "reason": s.get("reason", "")}
            for n, s in steps.items()
            if s["status"] not in ("ok",)
        ],
        "results": results,
        "summary": summarise(results),
    }


def _finite_only(obj):
    """``obj`` with every non-finite float as ``None`` (strict JSON; the table shows "—")."""
    if isinstance(obj, dict):
        return {k: _finite_only(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_only(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def _finite(x) -> float | None:
    return x if isinstance(x, int | float) and math.isfinite(x) else None


def summarise(results: dict) -> dict:
    """Throughput rows, data share, NSI ratios, odeint ratios, epoch and paper-scale hours."""
    rows = [
        {k: r[k] for k in ("model", "compile", "images_per_s", "step_ms", "data_share")}
        for n, r in results.items()
        if n.startswith(("train_", "compile_"))
    ]
    eager = {r["model"]: r["images_per_s"] for r in rows if not r["compile"]}
    nsi = results.get("nsi_overhead", {}).get("rows", [])
    out = {
        "throughput": rows,
        "data_share_max": max((r["data_share"] for r in rows), default=None),
        "nsi_ratio": {("bf16" if r["bf16"] else "fp32"): r["ratio"] for r in nsi},
        "odeint": [
            {k: r.get(k) for k in ("problem", "method", "mode", "ratio", "skipped")}
            for r in results.get("odeint", {}).get("rows", [])
        ],
        "targets": {"data_share_max": 0.05, "nsi_ratio": 1.03},
    }
    if "epoch_cifar10" in results:
        ep = results["epoch_cifar10"]
        out |= {"epoch_images": {"train": ep["train_images"], "val": ep["val_images"]}}
        out |= paper_scale(ep["epoch_s"], eager)
    return out


def paper_scale(epoch_s: float, eager_ips: dict[str, float]) -> dict:
    """Hours of docs/results.md §4's experiments from the measured ResNet-164 epoch."""
    base = eager_ips.get("resnet164")
    per_model = {
        m: (epoch_s * base / eager_ips[m] if base and m in eager_ips else epoch_s) for m in MODELS
    }
    rows = []
    for name, runs, epochs, estimate in PAPER:
        hours = sum(n * epochs * per_model[m] for m, n in runs.items()) / 3600
        scaled = all(m == "resnet164" or (base and m in eager_ips) for m in runs)
        rows.append(
            {
                "experiment": name,
                "runs": sum(runs.values()),
                "epochs": epochs,
                "projected_hours": hours,
                "docs_estimate": estimate,
                "basis": "measured" if scaled else "ResNet-164 epoch (adaptor not measured)",
            }
        )
    return {
        "epoch_s": epoch_s,
        "epoch_s_per_model": per_model,
        "paper_scale": rows,
        "efficiency_15_epoch_trials_per_2h_study": 7200 / (15 * epoch_s),
    }


def _f(x, spec: str = ".3g") -> str:
    return "—" if _finite(x) is None else format(x, spec)


def table(report: dict) -> str:
    """The short human-readable summary printed at the end of the run."""
    s, t = report["summary"], report["tests"]
    lines = [
        f"GPU check on {report['device']} ({report['mode']}): {report['wall_s']:.0f} s "
        f"of {report['deadline_s']:.0f}",
        f"tests -m cuda: {t['status']}"
        + (
            f", {t['passed']} passed, {t['failed']} failed, {t['errors']} errors, "
            f"{t['skipped']} skipped"
            if "passed" in t
            else ""
        ),
        f"{'model':<10} {'compile':<8} {'images/s':>9} {'step ms':>8} {'data share':>11} (≤ 5 %)",
    ]
    for r in s["throughput"]:
        lines.append(
            f"{r['model']:<10} {'yes' if r['compile'] else 'no':<8} {_f(r['images_per_s'], '9.0f')}"
            f" {_f(r['step_ms'], '8.1f')} {_f(100 * r['data_share'], '10.1f')}%"
        )
    nsi = ", ".join(f"{k} {_f(v, '.3f')}" for k, v in s["nsi_ratio"].items()) or "—"
    lines.append(f"NSI recording, recorded/plain forward: {nsi} (≤ 1.03)")
    for r in s["odeint"]:
        what = r["skipped"] or f"odeattn/torchdiffeq {_f(r['ratio'], '.2f')}"
        lines.append(f"odeint {r['problem']} {r['method']} {r.get('mode') or ''}: {what}")
    if "epoch_s" in s:
        n = s["epoch_images"]
        lines.append(
            f"CIFAR-10 ResNet-164 epoch ({n['train']:,} train + {n['val']:,} val images): "
            f"{s['epoch_s']:.1f} s"
        )
        lines += [
            f"  {r['experiment']}: {r['runs']} × {r['epochs']} epochs → "
            f"{r['projected_hours']:.1f} h (docs estimate {r['docs_estimate']})"
            for r in s["paper_scale"]
        ]
    lines += [
        f"not run / not ok: {r['step']} ({r['status']}: {r['reason'][:120]})"
        for r in report["skipped"]
    ]
    return "\n".join(lines)
