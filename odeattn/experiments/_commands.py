"""The full-size and paper-size commands of docs/results.md, with what each trains and its time.

A full-size claim trains ``networks`` new networks (the ones it shares with an earlier claim are
cached) for :data:`~._sizes.FULL` ``.epochs`` epochs each. Its time is an estimate, not a
measurement of the full run: ``networks × epochs × s`` / 2, with ``s`` the seconds one network
takes for one epoch on one torch thread, measured with ``--quick`` (3 seeds, 1 epoch, nothing
else heavy running) on the 2-core machine of issue 21 (:data:`EPOCH_SECONDS`), and 2 runs in
parallel (``--jobs 2``, one per core).
"""

from __future__ import annotations

from odeattn.experiments._sizes import FULL
from odeattn.experiments._tables import row, table

__all__ = ["EPOCH_SECONDS", "commands_table", "paper_table"]

#: seconds per network and epoch, one torch thread (``run NAME --quick --jobs 1``, wall time of
#: its training divided by networks × 1 epoch; includes the measurement pass).
EPOCH_SECONDS = {
    "deep": 2.0,  # digits_resnet 8-8-8, plain / SE / ECA / StepNet, SE shared
    "dia": 2.3,  # digits_resnet 9-9-9, SE / ECA / SRM
    "bench": 3.0,  # one evidence_deep architecture, one seed (mean over the sample)
}
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
    return table(["command (full size)", "networks trained", "estimated time, 2 cores"], rows)


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
