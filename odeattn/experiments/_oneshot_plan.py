"""Issue 19's evidence, fixed before the runs: the one-shot LTH4SA search against training from scratch.

Everything runs on ``studies/lth4sa_supernet.yaml`` (``digits_resnet`` 3-3-3 with SE, the LTH4SA
placement space: one bit per block, 2⁹ = 512 architectures; its recipe, data split, supernet
settings and EAN controller), in three parts, each one claim of :data:`~._plan.PLAN`:

a. ``oneshot_rank`` — does the supernet rank like training from scratch? ``archs`` placements
   (none, full, then the first distinct uniform draws of the supernet's own path distribution,
   generator seed :data:`ARCH_SEED`) are scored by supernets trained ``short`` (the study's)
   and ``long`` epochs (SPOS, seed 0), each with and without BatchNorm recalibration, and trained
   from scratch with ``seeds`` seeds (0, 1, …) as a trial of the study. Kendall τ-b of score
   and mean stand-alone accuracy with a bootstrap CI over architectures, beside the noise
   ceiling (the premise: a ranking that does not repeat between seeds cannot be matched).
b. ``oneshot_search`` — does one-shot find better architectures per unit of time? For each
   search seed, three runs of ``python -m odeattn.search``'s ``run_search`` with the same wall
   time ``seconds`` (``budget.timeout``; the supernet's training counts in it): ``oneshot``
   (``strategy: supernet``, EAN's REINFORCE controller), ``tpe`` and ``random`` (``strategy:
   scratch``), all maximising validation accuracy, one replicate a trial. The best architecture
   of every run is retrained with the fresh seeds :attr:`OneshotSize.fresh` (the best-so-far
   bias removed); differences of the retrained accuracy paired by search seed.
c. ``oneshot_lth4sa`` — LTH4SA through the papers' route: the study's search as shipped (its
   controller budget, no step 3), the scheme with the highest EAN reward (``100·accuracy +
   2·share of blocks without attention``) against full attention and no attention, retrained
   with ``lth_seeds`` seeds paired.

Every network and supernet trains on one torch thread, so (a) and (c) are bit-reproducible;
(b)'s budget is wall time, so what its runs find depends on the machine (as §2's efficiency).
Accuracy thresholds are fractions (0.01 = 1 point).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ARCH_SEED",
    "ONESHOT_CLAIMS",
    "ONESHOT_FULL",
    "ONESHOT_QUICK",
    "ONESHOT_ROWS",
    "ONESHOT_RULES",
    "SCHEMES",
    "SEARCH_ARMS",
    "STUDY",
    "OneshotSize",
    "oneshot_command",
]

STUDY = Path(__file__).resolve().parents[2] / "studies" / "lth4sa_supernet.yaml"
ARCH_SEED = 0  # torch.Generator seed of part (a)'s uniform draws
SEARCH_ARMS = ("oneshot", "tpe", "random")
SCHEMES = ("sparse", "full", "none")  # (c)
ONESHOT_CLAIMS = ("oneshot_rank", "oneshot_search", "oneshot_lth4sa")
ONESHOT_RULES = {c: "all" for c in ONESHOT_CLAIMS}


@dataclass(frozen=True)
class OneshotSize:
    """The sizes of the three parts (the study's own settings where a field says so)."""

    archs: int  # (a) architectures
    seeds: int  # (a) stand-alone training seeds of each
    epochs: int  # stand-alone training epochs, every part (the study's: 5)
    short: int  # (a) supernet epochs, short (the study's: 5); (c)'s supernet
    long: int  # (a) supernet epochs, long
    search_seeds: int  # (b) search seeds (sampler and supernet)
    seconds: float  # (b) wall time of each search run
    fresh: tuple[int, ...]  # (b) retraining seeds of each run's best
    lth_seeds: int  # (c) training seeds of each scheme
    lth_trials: int  # (c) architectures the controller scores (the study's: 45)


ONESHOT_FULL = OneshotSize(
    archs=40,
    seeds=3,
    epochs=5,
    short=5,
    long=30,
    search_seeds=5,
    seconds=150.0,
    fresh=(100, 101, 102),
    lth_seeds=5,
    lth_trials=45,
)
ONESHOT_QUICK = OneshotSize(
    archs=6,
    seeds=2,
    epochs=1,
    short=1,
    long=2,
    search_seeds=2,
    seconds=45.0,
    fresh=(100, 101),
    lth_seeds=2,
    lth_trials=6,
)

_F = ONESHOT_FULL
_TAU = "Kendall τ(supernet score {}, mean stand-alone accuracy), supernet trained {} epochs"
_RECAL, _PLAIN = "after BN recalibration", "with the supernet's shared BN statistics"
_RET = "retrained accuracy of the best architecture found: {} − {}, paired by search seed"

#: (claim, id, comparison, threshold, rule, role, level): the rows of ``_plan.Test``.
ONESHOT_ROWS: tuple[tuple[str, str, str, float, str, str, float], ...] = (
    ("oneshot_rank", "ceiling", "noise ceiling: mean τ between two training seeds' accuracies; "
     "CI resamples seed pairs and architectures", 0.0, "above", "premise", 0.95),
    ("oneshot_rank", "recal short tau", _TAU.format(_RECAL, _F.short), 0.0, "above",
     "primary", 0.95),
    ("oneshot_rank", "recal long tau", _TAU.format(_RECAL, _F.long), 0.0, "above",
     "primary", 0.95),
    ("oneshot_rank", "plain short tau", _TAU.format(_PLAIN, _F.short), 0.0, "above",
     "secondary", 0.95),
    ("oneshot_rank", "plain long tau", _TAU.format(_PLAIN, _F.long), 0.0, "above",
     "secondary", 0.95),
    ("oneshot_rank", "recal-plain short", f"τ(recalibrated) − τ(shared statistics), {_F.short} "
     "epochs; paired bootstrap over architectures", 0.0, "above", "secondary", 0.95),
    ("oneshot_rank", "recal-plain long", f"τ(recalibrated) − τ(shared statistics), {_F.long} "
     "epochs; paired bootstrap", 0.0, "above", "secondary", 0.95),
    ("oneshot_rank", "long-short", f"τ(recalibrated, {_F.long} epochs) − τ(recalibrated, "
     f"{_F.short} epochs); paired bootstrap", 0.0, "above", "secondary", 0.95),
    ("oneshot_rank", "long - attention", f"τ(recalibrated, {_F.long} epochs) − τ(attention "
     "blocks): the supernet against counting blocks; paired bootstrap", 0.0, "above",
     "secondary", 0.95),
    ("oneshot_search", "oneshot-tpe", _RET.format("one-shot", "TPE from scratch"), 0.0,
     "above", "primary", 0.95),
    ("oneshot_search", "oneshot-random", _RET.format("one-shot", "random search"), 0.0,
     "above", "primary", 0.95),
    ("oneshot_search", "tpe-random", _RET.format("TPE", "random search"), 0.0, "above",
     "secondary", 0.95),
    ("oneshot_search", "oneshot-tpe within", "the same one-shot − TPE difference inside ±1 "
     "point (within noise)", 0.01, "within", "secondary", 0.95),
    ("oneshot_search", "oneshot-random within", "the same one-shot − random difference "
     "inside ±1 point (within noise)", 0.01, "within", "secondary", 0.95),
    ("oneshot_lth4sa", "full-none", "accuracy(full) − accuracy(none): attention must gain "
     "more than the matching margin", 0.01, "above", "premise", 0.95),
    ("oneshot_lth4sa", "sparse-full", "accuracy(controller's scheme) − accuracy(full), "
     "paired by seed: matches (CI above −1 point)", -0.01, "above", "primary", 0.95),
    ("oneshot_lth4sa", "sparse-none", "accuracy(controller's scheme) − accuracy(none), "
     "paired by seed", 0.0, "above", "secondary", 0.95),
)  # fmt: skip


def oneshot_command(claim: str = "oneshot") -> str:
    """The full-size command of one part (or of all three: ``oneshot``)."""
    return f"python -m odeattn.experiments run {claim} --jobs 2 --out runs/evidence"
