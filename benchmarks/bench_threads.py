"""Threads per trial on a busy machine: how much a parallel CPU load slows one search trial.

One trial of the main job's model (digits, ``digits_resnet`` 3-3-3 with SE, the ``digits``
recipe) is trained in a fresh process with 1 and with 2 torch threads, first on the quiet
machine and then while ``--load`` CPU-bound processes run beside it. Printed as one JSON object:
seconds per case, ``slowdown`` = loaded / quiet time for each thread count, and the fair share
``(load + threads) / cores`` a trial should slow by at most if it only lost its share of the
cores. The default of ``odeattn.search`` (``search/processes/_threads.py``: the free cores per
worker, at least 1) is chosen from this.

    python benchmarks/bench_threads.py [--epochs 3] [--load 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import cpu_name  # noqa: E402

_TRIAL = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from odeattn.data import load_dataset
from odeattn.models import create_model
from odeattn.train import RECIPES, fit
data = load_dataset("digits", val_fraction=0.3, seed=0)
torch.manual_seed(0)
model = create_model("digits_resnet", adaptor="se", blocks=[3, 3, 3], num_classes=10)
cfg = RECIPES["digits"].with_epochs(int(sys.argv[2]))
t0 = time.perf_counter()
fit(model, data, cfg)
print(time.perf_counter() - t0)
"""


def _trial(threads: int, epochs: int) -> float:
    """Seconds of one trial's training in a fresh process with ``threads`` torch threads."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, "-c", _TRIAL, str(threads), str(epochs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _measure(epochs: int, load: int, repeats: int) -> dict[str, Any]:
    quiet = {t: min(_trial(t, epochs) for _ in range(repeats)) for t in (1, 2)}
    procs = _busy(load)
    try:
        time.sleep(1.0)
        loaded = {t: min(_trial(t, epochs) for _ in range(repeats)) for t in (1, 2)}
    finally:
        for p in procs:
            p.kill()
            p.wait()
    n = os.cpu_count() or 1
    return {
        "quiet_s": quiet,
        "loaded_s": loaded,
        "slowdown": {t: loaded[t] / quiet[t] for t in (1, 2)},
        "fair_share_slowdown": {t: max(1.0, (load + t) / n) for t in (1, 2)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--load", type=int, default=4, help="CPU-bound processes beside the trial")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    load_before = os.getloadavg()[0]  # 1-min average before the quiet runs: is "quiet" quiet?
    res = _measure(a.epochs, a.load, a.repeats)
    print(
        json.dumps(
            {
                "bench": "threads",
                "commit": commit,
                "machine": {
                    "cpu": cpu_name(),
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                },
                "settings": {"epochs": a.epochs, "load": a.load, "repeats": a.repeats},
                "load_before": load_before,
                **res,
            }
        )
    )


if __name__ == "__main__":
    main()
