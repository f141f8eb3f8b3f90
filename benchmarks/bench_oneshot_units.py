"""The unit costs behind docs/results.md §6's time estimates of a ranking part (d or e).

For part ``spread`` (``studies/spread_supernet.yaml``) or ``elastic``
(``studies/elastic_supernet.yaml``), on one torch thread, CPU seconds (``time.process_time``):
``run_trial`` of every 4th of the part's full-size architectures at 1 and 8 epochs (a network =
``net_fixed`` + epochs × ``net_epoch``), ``train_supernet`` at 1 and 6 epochs (``supernet_fixed``
+ epochs × ``supernet_epoch``), and ``score`` with recalibration + ``evaluate`` of the extracted
network for every architecture (``score_both``). Prints one JSON object: the raw means, the units
as ``odeattn/experiments/_oneshot_page.py`` holds them, the commit, machine and load.

    python benchmarks/bench_oneshot_units.py --part elastic
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_name  # noqa: E402
from rich.console import Console  # noqa: E402

from odeattn.experiments._oneshot_rank import ELASTIC, SPREAD, spread_archs  # noqa: E402
from odeattn.experiments._oneshot_runs import one_thread, study_variant  # noqa: E402
from odeattn.search import run_trial  # noqa: E402
from odeattn.search.oneshot import train_supernet  # noqa: E402
from odeattn.search.trial import loaded_supernet  # noqa: E402
from odeattn.study import data_for, load_study, resolve_space  # noqa: E402
from odeattn.supernet import score, supernet_plan  # noqa: E402
from odeattn.train import evaluate  # noqa: E402

PARTS = {"spread": SPREAD, "elastic": ELASTIC}


def _cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def measure(part: str, tmp: Path) -> dict[str, float]:
    """The raw means (seconds) of the module docstring."""
    p = PARTS[part]
    base = study_variant(load_study(p.study), runs_dir=str(tmp))
    archs = spread_archs(resolve_space(base), p.full.archs)
    out: dict[str, float] = {}
    for ep in (1, 8):
        st = study_variant(base, train={"epochs": ep})
        ts = [_cpu(lambda a=a, st=st: run_trial(st, dict(a), seed=0)) for a in archs[::4]]
        out[f"net_{ep}"] = sum(ts) / len(ts)
    for ep in (1, 6):
        st = study_variant(base, supernet={"epochs": ep}, runs_dir=str(tmp / f"s{ep}"))
        out[f"supernet_{ep}"] = _cpu(lambda st=st: train_supernet(st, Console(quiet=True)))
    net = loaded_supernet(st)  # the 6-epoch supernet, in eval mode
    data, s = data_for(st), supernet_plan(st).settings
    kw = {"recal_batches": s.recal_batches, "batch_size": s.recal_batch_size, "seed": s.seed}

    def both() -> None:
        for a in map(net.arch_of, archs):
            score(net, a, data, **kw)
            evaluate(net.extract(a).eval(), data, "val")

    out["score_both"] = _cpu(both) / len(archs)
    return out


def units(part: str, raw: dict[str, float]) -> dict[str, float]:
    """``_oneshot_page``'s units from the raw means (two-point fits in the epochs)."""
    epoch = (raw["net_8"] - raw["net_1"]) / 7
    sup = (raw["supernet_6"] - raw["supernet_1"]) / 5
    vals = {"net_fixed": raw["net_1"] - epoch, "net_epoch": epoch,
            "supernet_fixed": raw["supernet_1"] - sup, "supernet_epoch": sup,
            "score_both": raw["score_both"]}  # fmt: skip
    return {f"{part}_{k}": round(v, 2) for k, v in vals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=sorted(PARTS), required=True)
    args = ap.parse_args()
    os.environ["ODEATTN_THREADS"] = "1"
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory() as d, one_thread():
        raw = measure(args.part, Path(d))
    print(json.dumps({"part": args.part, "raw_cpu_s": raw, "units": units(args.part, raw),
                      "threads": 1, "commit": commit, "cpu": cpu_name(),
                      "loadavg_start": load0,
                      "loadavg_end": Path("/proc/loadavg").read_text().split()[:3]}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
