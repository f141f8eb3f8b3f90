"""The full-size and paper-size commands of docs/results.md, with what each trains and its time.

A full-size claim trains ``networks`` new networks (the ones it shares with an earlier claim are
cached) for :data:`~._sizes.FULL` ``.epochs`` epochs each. Its time is an estimate, not a
measurement of the full run: ``networks × epochs × s / 2``, with ``s`` the CPU seconds of one
epoch of one network on one torch thread (:data:`EPOCH_SECONDS`) and 2 runs in parallel
(``--jobs 2``, one per core of the 2-core machine of issue 21).
"""

from __future__ import annotations

from odeattn.experiments._sizes import FULL
from odeattn.experiments._tables import row, table

__all__ = ["EPOCH_SECONDS", "commands_table", "paper_table"]

#: CPU seconds (``time.process_time``) per network and epoch on one torch thread, AMD EPYC of the
#: issue-21 machine: ``train_variant`` for 2 epochs minus 1 epoch (build, data and measurement
#: cancel), per variant: 8-8-8 plain 1.5, SE 2.0, ECA 1.7, StepNet 3.0, SE shared 1.8; 9-9-9 SE
#: 2.7, SRM 2.1, ECA shared 2.7; the benchmark: ``_bench.evaluate`` of its first 6 draws of
#: evidence_deep at 1 epoch, 2 seeds: 3.4 a seed (proxies included), 3.0 a training epoch.
EPOCH_SECONDS = {"deep": 2.0, "dia": 2.5, "bench": 3.0}
RUN = "python -m odeattn.experiments run {} --jobs 2 --out runs/evidence"

# (claim, new networks at full size, which EPOCH_SECONDS, epochs each)
_FULL = (
    ("attention_tns", 4 * FULL.seeds, "deep", FULL.epochs),
    ("stiff_blocks", 0, "deep", FULL.epochs),
    ("tns_accuracy", FULL.n * FULL.bench_seeds, "bench", FULL.bench_epochs),
    ("lth4sa", 7 * FULL.seeds, "deep", FULL.epochs),
    ("dia_sharing", 7 * FULL.seeds, "dia", FULL.epochs),
    ("stepnet_vs_se", 0, "deep", FULL.epochs),
)


def _hours(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def commands_table() -> str:
    """One row per claim: the command, the networks it trains, and its estimated time."""
    rows, total = [], 0.0
    for claim, n, kind, epochs in _FULL:
        t = n * epochs * EPOCH_SECONDS[kind] / 2
        total += t
        what = f"{n} × {epochs} epochs" if n else "none (the claim-1 networks)"
        rows.append(row(f"`{RUN.format(claim)}`", what, _hours(t) if n else "seconds"))
    rows.append(row(f"`{RUN.format('all')}`", "all of the above", _hours(total)))
    head = [
        "command (full size)",
        "networks trained (run in this order)",
        "estimated time, 2 cores",
    ]
    return table(head, rows)


_PAPER = (
    ("claims 1, 2, 3 (models), 6: plain / SE / ECA / StepNet", "attention_tns", "40 × 164"),
    ("claim 3: benchmark of `evidence_paper.yaml`", "tns_accuracy", "48 × 30"),
    ("claim 4: LTH4SA, premise and 6 arms", "lth4sa", "70 × 164"),
    ("claim 5: DIA Table 3 at ResNet-164 (18 a stage)", "dia_sharing", "70 × 164"),
)


def paper_table() -> str:
    """The paper-scale commands (ResNet-164, CIFAR-10, a GPU); not run, no time claimed."""
    rows = [
        row(what, f"`python -m odeattn.experiments run {c} --size paper --out runs/paper`", n)
        for what, c, n in _PAPER
    ]
    return table(["experiment", "command", "networks × epochs"], rows)
