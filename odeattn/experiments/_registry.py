"""The claims by name: ``python -m odeattn.experiments run NAME`` (``list`` prints these tables).

Each entry is (one-line claim, function of a :class:`~._sizes.Ctx` returning its result dict);
the comparisons that decide are those of :data:`~._plan.PLAN`. :data:`CLAIMS` are the papers'
(``run all``); :data:`ONESHOT` are issue 19's one-shot search (``run oneshot``: a, b, c, d), apart
because part b's budget is wall time (not bit-reproducible) and they have no paper size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from odeattn.experiments._claims import attention_tns, stepnet_vs_se, stiff_blocks, tns_accuracy
from odeattn.experiments._oneshot import oneshot_lth4sa, oneshot_search
from odeattn.experiments._oneshot_rank import (
    oneshot_rank,
    oneshot_rank_elastic,
    oneshot_rank_spread,
)
from odeattn.experiments._papers import dia_sharing, lth4sa
from odeattn.experiments._sizes import Ctx

__all__ = ["CLAIMS", "ONESHOT"]

CLAIMS: dict[str, tuple[str, Callable[[Ctx], dict[str, Any]]]] = {
    "attention_tns": (
        "1. attention networks show larger TNS than plain (StepNet Fig. 2)",
        attention_tns,
    ),
    "stiff_blocks": (
        "2. few blocks carry the stiffness: p̂ ≤ 10 % for most M (Fig. 6)",
        stiff_blocks,
    ),
    "tns_accuracy": ("3. TNS rank-correlates with accuracy (Fig. 7)", tns_accuracy),
    "lth4sa": ("4. a minority of attention blocks matches full attention (LTH4SA)", lth4sa),
    "dia_sharing": (
        "5. a module shared across the stage loses no accuracy (DIA Table 3)",
        dia_sharing,
    ),
    "stepnet_vs_se": ("6. StepNet's adaptor beats SE at about equal parameters", stepnet_vs_se),
}

ONESHOT: dict[str, tuple[str, Callable[[Ctx], dict[str, Any]]]] = {
    "oneshot_rank": ("a. the supernet ranks placements like training from scratch", oneshot_rank),
    "oneshot_search": (
        "b. one-shot finds better placements than TPE / random from scratch in equal time",
        oneshot_search,
    ),
    "oneshot_lth4sa": (
        "c. the controller's sparse scheme matches full attention (LTH4SA's route)",
        oneshot_lth4sa,
    ),
    "oneshot_rank_spread": (
        "d. the supernet ranks evidence_spread's depth, adaptor and method (fixed width) like "
        "training from scratch",
        oneshot_rank_spread,
    ),
    "oneshot_rank_elastic": (
        "e. the supernet with elastic width ranks evidence_spread's whole space like training "
        "from scratch",
        oneshot_rank_elastic,
    ),
}
