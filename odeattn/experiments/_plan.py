"""The plan, fixed before the runs: every claim's comparison, threshold, rule, seeds and level.

One :class:`Test` per pre-registered comparison; a claim's function computes the estimate and its
CI and :func:`judge` turns them into the verdict word with :func:`~._verdict.verdict`, so the
rule that decides is the one written here (and, generated from here, in docs/results.md "Plan").
A claim's overall verdict combines its primary tests as ``combine`` says:

    all    held iff every primary test is held (an intersection-union test: each at 95 %)
    any    held iff some primary test is held; each CI at 1 − 0.05 / k (Bonferroni, k tests)

A ``premise`` test must be held for the tests that rest on it to be testable (the claim's
function judges those with ``testable=False`` otherwise, so they read "untestable here"). Accuracy thresholds are fractions (0.01 = 1 accuracy point).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from odeattn.experiments._oneshot_plan import ONESHOT_ROWS, ONESHOT_RULES
from odeattn.experiments._verdict import verdict

__all__ = ["CLAIM_RULES", "PLAN", "Test", "combine", "judge", "tests_of"]

ADAPTORS3 = ("se", "eca", "stepnet")
LTH_ARMS = ("first", "middle", "last", "spread", "random1", "random2")
DIA_MODULES = ("se", "eca", "srm")
MARGIN = 0.01  # "matches" / "no loss": the CI of the difference lies above −1 accuracy point


@dataclass(frozen=True)
class Test:
    """One pre-registered comparison: ``estimate`` [CI at ``level``] against ``threshold``."""

    claim: str
    id: str
    comparison: str
    threshold: float
    rule: str
    role: str = "primary"  # primary, secondary (reported, not combined) or premise
    level: float = 0.95


def _claim1() -> list[Test]:
    out = []
    for kind, role in (("step", "primary"), ("fd", "secondary")):
        for a in ADAPTORS3:
            out.append(
                Test(
                    "attention_tns",
                    f"{a}-plain {kind}",
                    f"TNS({a}) − TNS(plain), {kind} NSI, paired by seed",
                    0.0,
                    "above",
                    role,
                )
            )
    return out


def _claim2() -> list[Test]:
    out = []
    for kind, role in (("step", "primary"), ("fd", "secondary")):
        for v in ("plain", *ADAPTORS3):
            out.append(
                Test(
                    "stiff_blocks",
                    f"{v} {kind}",
                    f"share of the 11×11 M grid with p̂ ≤ 10 % ({v}, {kind} NSI), mean over seeds",
                    0.5,
                    "above",
                    role,
                )
            )
    return out


def _claim3() -> list[Test]:
    return [
        Test(
            "tns_accuracy",
            "models tau",
            "Kendall τ(TNS step, accuracy) over the claim-1 "
            "networks (4 variants × seeds), bootstrap over networks",
            0.0,
            "above",
        ),
        Test(
            "tns_accuracy",
            "ceiling",
            "noise ceiling τ of the benchmark (evidence_deep), its point estimate (no CI)",
            0.6,
            "above",
            "premise",
        ),
        Test(
            "tns_accuracy",
            "tns@init tau",
            "Kendall τ(TNS at init, mean accuracy), benchmark",
            0.0,
            "above",
        ),
        Test(
            "tns_accuracy",
            "tns@init - params",
            "τ(TNS at init) − τ(params), paired bootstrap over architectures",
            0.0,
            "above",
            "secondary",
        ),
        Test(
            "tns_accuracy",
            "tns_end tau",
            "Kendall τ(TNS trained, mean accuracy), benchmark",
            0.0,
            "above",
            "secondary",
        ),
    ]


def _claim4() -> list[Test]:
    arms = [
        Test(
            "lth4sa",
            f"{a}-full",
            f"accuracy({a}) − accuracy(full), SE shared per stage on 2 of 8 blocks",
            -MARGIN,
            "above",
            level=1 - 0.05 / len(LTH_ARMS),
        )
        for a in LTH_ARMS
    ]
    premise = Test(
        "lth4sa",
        "full-none",
        "accuracy(full) − accuracy(none): attention must gain more than the matching margin",
        MARGIN,
        "above",
        "premise",
    )
    return [premise, *arms]


def _claim5() -> list[Test]:
    out = []
    for m in DIA_MODULES:
        out.append(
            Test(
                "dia_sharing",
                f"{m} stage-block",
                f"accuracy({m} shared per stage) − accuracy({m} in every block), no loss",
                -MARGIN,
                "above",
            )
        )
        out.append(
            Test(
                "dia_sharing",
                f"{m} gain",
                "the same difference, a gain (DIA Table 3's ↑)",
                0.0,
                "above",
                "secondary",
            )
        )
    return out


PLAN: tuple[Test, ...] = (
    *_claim1(),
    *_claim2(),
    *_claim3(),
    *_claim4(),
    *_claim5(),
    Test(
        "stepnet_vs_se",
        "stepnet-se",
        "accuracy(StepNet) − accuracy(SE), claim-1 networks",
        0.0,
        "above",
    ),
    *(Test(*r) for r in ONESHOT_ROWS),  # issue 19 (docs/results.md §6)
)

CLAIM_RULES = {
    "attention_tns": "all",
    "stiff_blocks": "all",
    "tns_accuracy": "all",
    "lth4sa": "any",
    "dia_sharing": "all",
    "stepnet_vs_se": "all",
    **ONESHOT_RULES,
}


def tests_of(claim: str) -> dict[str, Test]:
    """The plan's tests of ``claim`` by id."""
    return {t.id: t for t in PLAN if t.claim == claim}


def judge(
    claim: str, test_id: str, est: tuple[float, float, float], *, testable: bool = True
) -> dict[str, Any]:
    """The record of one test: its plan entry, estimate, CI and verdict word."""
    t = tests_of(claim)[test_id]
    word = verdict(est[0], est[1:], t.threshold, t.rule, testable=testable)
    return {
        "id": t.id,
        "comparison": t.comparison,
        "role": t.role,
        "level": t.level,
        "threshold": t.threshold,
        "rule": t.rule,
        "estimate": est[0],
        "lo": est[1],
        "hi": est[2],
        "verdict": word,
    }


def combine(claim: str, records: list[dict[str, Any]]) -> str:
    """The claim's verdict from its judged tests (see the module docstring)."""
    words = {r["verdict"] for r in records if r["role"] == "primary"}
    if words <= {"untestable here"}:
        return "untestable here"
    if CLAIM_RULES[claim] == "any":
        return "held" if "held" in words else "not held"
    if "not held" in words:  # "all": one failed test decides
        return "not held"
    return "untestable here" if "untestable here" in words else "held"
