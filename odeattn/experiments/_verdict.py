"""The verdict word of a pre-registered test: held / not held / untestable here.

A claim is tested by one comparison fixed before the runs (docs/results.md, "Plan"): an
estimate with its CI, a threshold and a rule. The CI alone decides:

    above   held iff the whole CI lies above the threshold   (x > t; "no loss": t = −margin)
    below   held iff the whole CI lies below the threshold   (x < t)
    within  held iff the whole CI lies inside (−t, +t)       (equivalence, t > 0)

Otherwise the claim is **not held** — a CI that contains the threshold did not show the claim,
whatever the estimate. **untestable here** when the estimate or its CI is undefined (too few seeds,
a constant column) or a pre-registered precondition failed (a noise ceiling below its floor,
attention that does not help at all, a stage too shallow for TNS): then the data cannot speak.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from odeattn._errors import must, unknown_name

__all__ = ["RULES", "VERDICTS", "verdict"]

RULES = {
    "above": "held iff the CI lies above the threshold",
    "below": "held iff the CI lies below the threshold",
    "within": "held iff the CI lies inside (−threshold, +threshold)",
}
VERDICTS = ("held", "not held", "untestable here")


def verdict(
    estimate: float,
    ci: Sequence[float],
    threshold: float,
    rule: str,
    *,
    testable: bool = True,
) -> str:
    """The verdict word for ``estimate`` with ``ci = (low, high)`` (see the module docstring)."""
    if rule not in RULES:
        raise unknown_name("rule", rule, RULES)
    lo, hi = (float(c) for c in ci)
    if rule == "within" and not threshold > 0:
        raise must("threshold", "be > 0 for rule 'within' (the half-width)", threshold)
    if not testable or not all(math.isfinite(v) for v in (estimate, lo, hi)):
        return "untestable here"
    if lo > hi:
        raise must("ci", "be (low, high) with low <= high", (lo, hi))
    held = {
        "above": lo > threshold,
        "below": hi < threshold,
        "within": -threshold < lo and hi < threshold,
    }[rule]
    return "held" if held else "not held"
