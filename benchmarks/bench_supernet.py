"""One-shot search cost: supernet training, scoring per architecture, architectures per minute.

For a ``strategy: supernet`` study (default ``studies/lth4sa_supernet.yaml``), one JSON object:

* ``train_ratio`` = supernet training (step 1 as the search runs it: building the supernet,
  ``supernet.epochs`` of the recipe through ``fit``, SPOS or sandwich as the study says, a
  checkpoint per epoch) ÷ one stand-alone training of the largest architecture with the study's
  own training plan (``train.epochs``), same data, same threads, wall clock; target ≤ 1.5.
  ``train_ratio_epochs``: the same with the epochs' own times only (training + validation);
* ``score_ratio`` = seconds to score one architecture with ``odeattn.supernet.score``
  (BatchNorm recalibration on ``recal_batches`` batches + the validation split) ÷ seconds of one
  training epoch of the largest stand-alone architecture (mean over its epochs);
* ``archs_per_minute`` = 60 ÷ mean seconds of a full supernet trial without storage
  (``score_trial``: the score above, plus extraction, FLOPs, TNS on the evaluation set);
* the thread count (pinned with ``torch.set_num_threads``), the machine, the settings.

    flock /tmp/odeattn-bench.lock python benchmarks/bench_supernet.py [--threads 1] [--archs 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_name  # noqa: E402
from rich.console import Console  # noqa: E402

from odeattn.models import create_model  # noqa: E402
from odeattn.search.oneshot import train_supernet  # noqa: E402
from odeattn.search.trial import loaded_supernet, score_trial  # noqa: E402
from odeattn.study import data_for, load_study, plan_for  # noqa: E402
from odeattn.supernet import from_study, score, supernet_plan  # noqa: E402
from odeattn.train import fit  # noqa: E402


def _commit() -> str:
    r = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return r.stdout.strip() or "unknown"


def _alone(study, largest: dict) -> tuple[float, float]:
    """(wall seconds, summed epoch seconds) of one stand-alone training of the largest
    architecture with the study's plan."""
    net = from_study(study)
    torch.manual_seed(0)
    model = create_model(study.model.name, **net.space.fixed, **largest)
    epochs: list[float] = []
    t0 = time.perf_counter()
    fit(
        model,
        data_for(study),
        plan_for(study).train,
        report=lambda e, m: epochs.append(m["epoch_time_s"]) and False,
    )
    return time.perf_counter() - t0, sum(epochs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default=str(ROOT / "studies" / "lth4sa_supernet.yaml"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--archs", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # imports torch._dynamo (5 s)
    # once per process, before either timed training: the first fit would pay it otherwise
    with tempfile.TemporaryDirectory() as runs:
        study = load_study(a.study, runs_dir=runs)
        s = supernet_plan(study).settings
        t0 = time.perf_counter()
        t_super_epochs = train_supernet(study, Console(quiet=True))["train_seconds"]
        t_super = time.perf_counter() - t0
        net = loaded_supernet(study)
        t_alone, t_alone_epochs = _alone(study, net.largest())
        t_epoch = t_alone_epochs / plan_for(study).epochs
        g = torch.Generator().manual_seed(1)
        params = [net.sample(g) for _ in range(a.archs)]
        data = data_for(study)
        kw = {"recal_batches": s.recal_batches, "batch_size": s.recal_batch_size, "seed": s.seed}
        t_score, t_trial = [], []
        for p in params:
            t0 = time.perf_counter()
            score(net, net.arch_of(p), data, **kw)
            t_score.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            score_trial(study, p, None, trial=None)
            t_trial.append(time.perf_counter() - t0)
    print(json.dumps({
        "case": "supernet",
        "study": Path(a.study).name,
        "supernet_epochs": supernet_plan(study).train.epochs,
        "sandwich": net.sandwich,
        "standalone_epochs": plan_for(study).epochs,
        "supernet_train_s": round(t_super, 3),
        "standalone_train_s": round(t_alone, 3),
        "train_ratio": round(t_super / t_alone, 3),
        "supernet_epochs_s": round(t_super_epochs, 3),
        "standalone_epochs_s": round(t_alone_epochs, 3),
        "train_ratio_epochs": round(t_super_epochs / t_alone_epochs, 3),
        "score_s": round(statistics.mean(t_score), 4),
        "epoch_s": round(t_epoch, 4),
        "score_ratio": round(statistics.mean(t_score) / t_epoch, 4),
        "trial_s": round(statistics.mean(t_trial), 4),
        "archs_per_minute": round(60 / statistics.mean(t_trial), 1),
        "archs": a.archs,
        "recal_batches": s.recal_batches,
        "threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": _commit(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
