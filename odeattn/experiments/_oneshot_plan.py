"""Issue 19's evidence, fixed before the runs: the one-shot LTH4SA search against training from scratch.

Parts a-c run on ``studies/lth4sa_supernet.yaml`` (``digits_resnet`` 3-3-3 with SE, the LTH4SA
placement space: one bit per block, 2⁹ = 512 architectures; its recipe, data split, supernet
settings and EAN controller), part d on ``studies/spread_supernet.yaml``; each part is one claim
of :data:`~._plan.PLAN`:

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
d. ``oneshot_rank_spread`` — part (a)'s test on ``studies/spread_supernet.yaml``
   (:data:`SPREAD_STUDY`: evidence_spread's depth, adaptor kind and method per stage at the fixed
   width 4-8-16, 864 architectures), whose ranking should repeat between seeds where the
   placement space's did not: ``archs`` distinct uniform draws of the supernet's own sampler
   (:data:`ARCH_SEED`), sizes :data:`SPREAD_FULL`; the premise is claim 3's, the noise ceiling's
   point estimate ≥ 0.6; the supernet is set against counting parameters (§1's best proxy).
e. ``oneshot_rank_elastic`` — part (d)'s test on ``studies/elastic_supernet.yaml``
   (:data:`ELASTIC_STUDY`: evidence_spread's whole space, the width of every stage included,
   4/8/16/32, shared by the supernet's elastic width — each narrower stage runs the leading
   channels of the widest, as Once-for-All slices them), where (d) at a fixed width found the
   ranking did not repeat (ceiling 0.19) because evidence_spread's spread comes from its widths;
   sizes :data:`ELASTIC_FULL`, premise, architectures and count as (d).

Every network and supernet trains on one torch thread, so (a) and (c) are bit-reproducible;
(b)'s budget is wall time, so what its runs find depends on the machine (as §2's efficiency).
Accuracy thresholds are fractions (0.01 = 1 point).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ARCH_SEED",
    "ELASTIC_FULL",
    "ELASTIC_QUICK",
    "ELASTIC_STUDY",
    "ONESHOT_CLAIMS",
    "ONESHOT_FULL",
    "ONESHOT_QUICK",
    "ONESHOT_ROWS",
    "ONESHOT_RULES",
    "SCHEMES",
    "SEARCH_ARMS",
    "SPREAD_FULL",
    "SPREAD_QUICK",
    "SPREAD_STUDY",
    "STUDY",
    "OneshotSize",
    "RankSize",
    "oneshot_command",
]

STUDY = Path(__file__).resolve().parents[2] / "studies" / "lth4sa_supernet.yaml"
SPREAD_STUDY = STUDY.parent / "spread_supernet.yaml"  # (d)
ELASTIC_STUDY = STUDY.parent / "elastic_supernet.yaml"  # (e)
ARCH_SEED = 0  # torch.Generator seed of part (a)'s uniform draws
SEARCH_ARMS = ("oneshot", "tpe", "random")
SCHEMES = ("sparse", "full", "none")  # (c)
ONESHOT_CLAIMS = (
    "oneshot_rank",
    "oneshot_search",
    "oneshot_lth4sa",
    "oneshot_rank_spread",
    "oneshot_rank_elastic",
)
ONESHOT_RULES = {c: "all" for c in ONESHOT_CLAIMS}


@dataclass(frozen=True)
class RankSize:
    """The sizes of a ranking part ((a)'s are :attr:`OneshotSize.rank`; (d)'s :data:`SPREAD_FULL`)."""

    archs: int  # architectures
    seeds: int  # stand-alone training seeds of each
    epochs: int  # stand-alone training epochs (the study's)
    short: int  # supernet epochs, short (the study's)
    long: int  # supernet epochs, long


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

    @property
    def rank(self) -> RankSize:
        """Part (a)'s sizes."""
        return RankSize(self.archs, self.seeds, self.epochs, self.short, self.long)


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

SPREAD_FULL = RankSize(archs=40, seeds=3, epochs=8, short=8, long=48)  # evidence_spread's 8 epochs
SPREAD_QUICK = RankSize(archs=6, seeds=2, epochs=1, short=1, long=2)
ELASTIC_FULL = SPREAD_FULL  # (e): (d)'s sizes, so that the two spaces compare
ELASTIC_QUICK = SPREAD_QUICK

_F = ONESHOT_FULL
_TAU = "Kendall τ(supernet score {}, mean stand-alone accuracy), supernet trained {} epochs"
_RECAL, _PLAIN = "after BN recalibration", "with the supernet's shared BN statistics"
_RET = "retrained accuracy of the best architecture found: {} − {}, paired by search seed"
_CEILING = "noise ceiling: mean τ between two training seeds' accuracies"
Row = tuple[str, str, str, float, str, str, float]


def _rank_rows(
    claim: str, size: RankSize, ceiling: tuple[str, float], versus: tuple[str, str]
) -> tuple[Row, ...]:
    """A ranking part's tests: the premise ``ceiling`` (comparison, threshold), the four τ, the
    three paired differences, and the long supernet ``versus`` a count (test id, what it counts)."""
    s, n = size.short, size.long
    return (
        (claim, "ceiling", ceiling[0], ceiling[1], "above", "premise", 0.95),
        (claim, "recal short tau", _TAU.format(_RECAL, s), 0.0, "above", "primary", 0.95),
        (claim, "recal long tau", _TAU.format(_RECAL, n), 0.0, "above", "primary", 0.95),
        (claim, "plain short tau", _TAU.format(_PLAIN, s), 0.0, "above", "secondary", 0.95),
        (claim, "plain long tau", _TAU.format(_PLAIN, n), 0.0, "above", "secondary", 0.95),
        (claim, "recal-plain short", f"τ(recalibrated) − τ(shared statistics), {s} epochs; "
         "paired bootstrap over architectures", 0.0, "above", "secondary", 0.95),
        (claim, "recal-plain long", f"τ(recalibrated) − τ(shared statistics), {n} epochs; "
         "paired bootstrap", 0.0, "above", "secondary", 0.95),
        (claim, "long-short", f"τ(recalibrated, {n} epochs) − τ(recalibrated, {s} epochs); "
         "paired bootstrap", 0.0, "above", "secondary", 0.95),
        (claim, versus[0], f"τ(recalibrated, {n} epochs) − τ({versus[1]}): the supernet against "
         f"counting {versus[1].split()[-1]}; paired bootstrap", 0.0, "above", "secondary", 0.95),
    )  # fmt: skip


#: (claim, id, comparison, threshold, rule, role, level): the rows of ``_plan.Test``.
ONESHOT_ROWS: tuple[Row, ...] = (
    *_rank_rows(
        "oneshot_rank",
        _F.rank,
        (f"{_CEILING}; CI resamples seed pairs and architectures", 0.0),
        ("long - attention", "attention blocks"),
    ),
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
    *_rank_rows(
        "oneshot_rank_spread",
        SPREAD_FULL,
        (f"{_CEILING}, its point estimate (no CI; claim 3's premise): the space ranks alike "
         "between seeds", 0.6),
        ("long - params", "parameters"),
    ),
    *_rank_rows(
        "oneshot_rank_elastic",
        ELASTIC_FULL,
        (f"{_CEILING}, its point estimate (no CI; claim 3's premise): the space ranks alike "
         "between seeds", 0.6),
        ("long - params", "parameters"),
    ),
)  # fmt: skip


def oneshot_command(claim: str = "oneshot") -> str:
    """The full-size command of one part (or of all of them: ``oneshot``)."""
    return f"python -m odeattn.experiments run {claim} --jobs 2 --out runs/evidence"
