"""The GPU check (issue 22): on a CUDA machine, the CUDA tests and the GPU measurements within
one deadline, as one JSON file and a short table.

    bash benchmarks/gpu_check.sh --out $OUT/gpu_check.json --deadline 480   # on the GPU
    bash benchmarks/gpu_check.sh --cpu-smoke --out /tmp/gpu_check.json      # anywhere, tiny

First ``python -m pytest -m cuda tests/test_cuda.py`` (CUDA against CPU by value), then the steps
of ``_gpu_steps.STEPS`` in a worker process: training images/s of ResNet-164 and SE / StepNet /
DIA-ResNet-164 (bf16 + channels_last, eager, then ``torch.compile``), the data pipeline's share of
a step (target ≤ 5 %), NSI recording overhead (target ≤ 3 %), odeint vs torchdiffeq, and the
CIFAR-10 ResNet-164 epoch time that turns docs/results.md §4's estimates into projections
(``_gpu_report``). Each step has its own time limit and the run a total deadline: a step that
overruns is killed with its worker, the next one starts in a fresh worker, and whatever did not
run is listed with the reason. Installs nothing: a missing module is named and the steps that
need it are skipped. Works from a plain checkout (the repository root goes on ``sys.path``).
Exit status: 0 when nothing failed (skips and time-outs are reported, not failures), 1 when a
test or a step failed, 2 for a usage error (one line, nothing written), 130 when interrupted
(the tests' and the worker's processes are ended too; nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # odeattn from this tree, no install needed


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/gpu_check.json"))
    ap.add_argument("--deadline", type=float, default=480.0, help="seconds for the whole run")
    ap.add_argument("--cpu-smoke", action="store_true", help="every step once, tiny, on CPU")
    ap.add_argument("--steps", default="", help="comma-separated subset of the steps (and tests)")
    ap.add_argument("--worker", metavar="PLAN", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not 30 <= args.deadline <= 3600:
        ap.exit(2, f"gpu_check: `--deadline` must be in [30, 3600] s, but got {args.deadline}\n")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        from _gpu_steps import worker

        worker(args.worker)
        return 0
    from _gpu_report import check

    try:
        return check(args)
    except KeyboardInterrupt:
        print(
            "gpu_check: interrupted; nothing written, run the same command again", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
