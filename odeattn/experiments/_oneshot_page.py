"""The tables of docs/results.md §6 (issue 19): plan, commands with their time, and results.

The plan and the commands are rendered from code (:mod:`._oneshot_plan`); the results from
``docs/data/oneshot_{rank,search,lth4sa,rank_spread,rank_elastic}/result.json``. A full-size part's time is an
estimate, not a measurement of the full run: the seconds of its units measured at ``--quick`` and
single runs on this machine (:data:`UNIT_SECONDS`), times their counts, over 2 parallel jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from odeattn.experiments._oneshot_plan import (
    ELASTIC_FULL,
    ONESHOT_CLAIMS,
    ONESHOT_FULL,
    ONESHOT_ROWS,
    SCHEMES,
    SEARCH_ARMS,
    SPREAD_FULL,
    OneshotSize,
    RankSize,
    oneshot_command,
)
from odeattn.experiments._stats import fmt_ci, mean_ci
from odeattn.experiments._tables import ci, load, missing, row, source, table

__all__ = ["ONESHOT_BLOCKS", "UNIT_SECONDS", "elastic_estimate", "estimate", "spread_estimate"]

#: CPU seconds (``time.process_time``) on one torch thread, AMD EPYC of this machine, measured at
#: commit 94c81e8 + this change (load average 8–9 from other sessions): ``run_trial`` of the study
#: at 1 and 5 epochs (0.9 and 2.6–2.9 s: ``net_fixed`` + ``net_epoch`` × epochs, build and TNS at
#: init and end included); ``train_supernet`` at 1 and 6 epochs (2.2 and 3.2 s: build and
#: checkpoints in ``supernet_fixed``); ``score`` with recalibration 0.19 s + ``evaluate`` of the
#: extracted network 0.07 s (12 placements); ``run_search`` of 12 stored supernet trials 12.5 s
#: minus 1.5 s for a re-run with nothing to do (start, summary, plots, exports: the overhead).
#: Wall time was 3× these under that load; the estimates assume an otherwise idle machine.
#: Part (d)'s units, CPU seconds on one torch thread measured the same way for
#: ``studies/spread_supernet.yaml`` at commit 1629194 (load average 7-11 from other sessions):
#: ``run_trial`` of 10 of its 40 full-size architectures (every 4th) at 1 and 8 epochs (0.40 and
#: 2.44 s a network on average: fixed + 8 x epoch); ``train_supernet`` at 1 and 6 epochs (0.42 and
#: 1.82 s); ``score`` with recalibration + ``evaluate`` of the extracted network, 0.10 s an
#: architecture (all 40, the 6-epoch supernet).
SPREAD_UNITS = {
    "spread_net_fixed": 0.11,
    "spread_net_epoch": 0.29,
    "spread_supernet_fixed": 0.14,
    "spread_supernet_epoch": 0.28,
    "spread_score_both": 0.10,
}
#: Part (e)'s units, CPU seconds on one torch thread measured the same way for
#: ``studies/elastic_supernet.yaml`` by ``python benchmarks/bench_oneshot_units.py --part
#: elastic`` (its JSON: ``benchmarks/data/oneshot_units_elastic.json``, at e19ce56 with this
#: part's registration, load average 3-9): networks of every 4th of its 40 architectures (widths
#: 4-32 a stage) at 1 and 8 epochs, the supernet (at 32-32-32) at 1 and 6 epochs, a score with
#: and without recalibration for all 40.
ELASTIC_UNITS = {
    "elastic_net_fixed": 0.34,
    "elastic_net_epoch": 0.34,
    "elastic_supernet_fixed": 0.18,
    "elastic_supernet_epoch": 0.95,
    "elastic_score_both": 0.24,
}
UNIT_SECONDS = {
    "net_fixed": 0.4,
    "net_epoch": 0.5,
    "supernet_fixed": 2.0,
    "supernet_epoch": 0.2,
    "score_both": 0.26,
    "trial": 0.92,
    "search_overhead": 1.5,
    **SPREAD_UNITS,
    **ELASTIC_UNITS,
}


def _net(size: OneshotSize | RankSize, pre: str = "") -> float:
    return UNIT_SECONDS[f"{pre}net_fixed"] + size.epochs * UNIT_SECONDS[f"{pre}net_epoch"]


def _rank_time(size: RankSize, jobs: int, pre: str = "") -> float:
    """A ranking part: the long supernet's training and scoring (the short one beside it; after
    it with one job) + archs × seeds networks over ``jobs``; ``pre``: the study's units."""
    u = {k.removeprefix(pre): v for k, v in UNIT_SECONDS.items() if k.startswith(pre)}
    longest = u["supernet_fixed"] + size.long * u["supernet_epoch"] + size.archs * u["score_both"]
    short = u["supernet_fixed"] + size.short * u["supernet_epoch"] + size.archs * u["score_both"]
    return (longest if jobs > 1 else longest + short) + size.archs * size.seeds * _net(
        size, pre
    ) / jobs


def spread_estimate(size: RankSize = SPREAD_FULL, jobs: int = 2) -> float:
    """Estimated seconds of part (d) (:data:`SPREAD_UNITS`; as part (a) in :func:`estimate`)."""
    return _rank_time(size, jobs, "spread_")


def elastic_estimate(size: RankSize = ELASTIC_FULL, jobs: int = 2) -> float:
    """Estimated seconds of part (e) (:data:`ELASTIC_UNITS`; as part (a) in :func:`estimate`)."""
    return _rank_time(size, jobs, "elastic_")


def estimate(size: OneshotSize = ONESHOT_FULL, jobs: int = 2) -> dict[str, float]:
    """Estimated seconds of each part at ``size`` with ``jobs`` parallel runs (module doc).

    (a) the long supernet's training and scoring (the short one beside it) + archs × seeds
    networks; (b) 3 arms × seeds runs of T plus their overhead, then every best × fresh seeds;
    (c) the controller's trials + the 3 schemes' networks not trained by (a) (its supernet is
    (a)'s short one)."""
    u, net = UNIT_SECONDS, _net(size)
    a = _rank_time(size.rank, jobs)
    runs = len(SEARCH_ARMS) * size.search_seeds
    b = runs * (size.seconds + u["search_overhead"]) / jobs + runs * len(size.fresh) * net / jobs
    new = len(SCHEMES) * size.lth_seeds - 2 * min(size.seeds, size.lth_seeds)
    c = size.lth_trials * u["trial"] + u["search_overhead"] + new * net / jobs
    return {"oneshot_rank": a, "oneshot_search": b, "oneshot_lth4sa": c}


def _min(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _commands(data: Path) -> str:
    f, d, e = ONESHOT_FULL, SPREAD_FULL, ELASTIC_FULL
    est = estimate() | {
        "oneshot_rank_spread": spread_estimate(),
        "oneshot_rank_elastic": elastic_estimate(),
    }
    what = {
        "oneshot_rank": f"supernets of {f.short} and {f.long} epochs; {f.archs} placements × "
        f"{f.seeds} seeds × {f.epochs} epochs",
        "oneshot_search": f"3 arms × {f.search_seeds} seeds × {f.seconds:g} s of search; "
        f"each best × {len(f.fresh)} fresh seeds × {f.epochs} epochs",
        "oneshot_lth4sa": f"{f.lth_trials} controller trials; 3 schemes × {f.lth_seeds} seeds × "
        f"{f.epochs} epochs",
        "oneshot_rank_spread": f"supernets of {d.short} and {d.long} epochs; {d.archs} "
        f"architectures × {d.seeds} seeds × {d.epochs} epochs",
        "oneshot_rank_elastic": f"supernets of {e.short} and {e.long} epochs; {e.archs} "
        f"architectures × {e.seeds} seeds × {e.epochs} epochs",
    }
    rows = [row(f"`{oneshot_command(c)}`", what[c], _min(est[c])) for c in ONESHOT_CLAIMS]
    rows.append(row(f"`{oneshot_command()}`", "all five", _min(sum(est.values()))))
    return table(["command (full size)", "what it runs", "estimated time, 2 cores"], rows)


def _plan(data: Path) -> str:
    f = ONESHOT_FULL
    runs = {
        "oneshot_rank": f"{f.archs} placements × seeds 0–{f.seeds - 1}, {f.epochs} epochs",
        "oneshot_search": f"search seeds 0–{f.search_seeds - 1} paired, T = {f.seconds:g} s; "
        f"retrain seeds {', '.join(map(str, f.fresh))}",
        "oneshot_lth4sa": f"seeds 0–{f.lth_seeds - 1} paired, {f.epochs} epochs",
        "oneshot_rank_spread": f"{SPREAD_FULL.archs} architectures × seeds "
        f"0–{SPREAD_FULL.seeds - 1}, {SPREAD_FULL.epochs} epochs",
        "oneshot_rank_elastic": f"{ELASTIC_FULL.archs} architectures × seeds "
        f"0–{ELASTIC_FULL.seeds - 1}, {ELASTIC_FULL.epochs} epochs",
    }
    rows = [row(c, i, role, comp, f"{rule} {t:g}", f"{lvl:.4g}", runs[c])
            for c, i, comp, t, rule, role, lvl in ONESHOT_ROWS]  # fmt: skip
    return table(["claim", "test", "role", "comparison", "rule", "CI level", "runs"], rows)


def _result(name: str, body: Callable[[dict[str, Any]], str]) -> Callable[[Path], str]:
    rel = f"{name}/result.json"

    def render(data: Path) -> str:
        res = load(data, rel)
        if res is None:
            return missing(rel, oneshot_command(name))
        return body(res) + "\n\n" + source(rel, res)

    return render


def _rank(res: dict[str, Any], unit: str = "placement") -> str:
    tests = {t["id"]: t for t in res["tests"]}
    cost, rows = res["cost"], []
    for k, e in res["epochs"].items():
        for m, how in (("recal", "recalibrated BN"), ("plain", "shared BN statistics")):
            t = tests[f"{m} {k} tau"]
            rows.append(row(f"{k} ({e} epochs)", how, ci(t["estimate"], t["lo"], t["hi"], 2),
                            f"{cost[f'supernet_{k}_train_s']:.0f} s",
                            f"{cost[f'score_{k}_{m}_s']:.2f} s"))  # fmt: skip
    c = tests["ceiling"]
    c = res.get("ceiling") or {"tau": c["estimate"], "lo": c["lo"], "hi": c["hi"]}
    head = ["supernet", "score", "Kendall τ [95 % CI]", "supernet training", f"score / {unit}"]
    tail = (
        f"Noise ceiling τ = {ci(c['tau'], c['lo'], c['hi'], 2)} ({len(res['architectures'])}"
        f" {unit}s, {res['seeds']} seeds). Times are wall seconds of the run (its load); one "
        f"stand-alone training took {cost['standalone_s']:.1f} s."
    )
    return table(head, rows) + "\n\n" + tail


def _mean(vals: list[Any], digits: int = 3) -> str:
    return fmt_ci(*mean_ci([float("nan") if v is None else float(v) for v in vals]), digits)


def _search(res: dict[str, Any]) -> str:
    rows = []
    for a in SEARCH_ARMS:
        runs = res["search_runs"][a]
        sn = [r["supernet_seconds"] for r in runs if r["supernet_seconds"] is not None]
        rows.append(row(a, _mean([r["trials"] for r in runs], 0),
                        _mean([r["distinct"] for r in runs], 0),
                        _mean(sn, 0) if sn else "—",
                        _mean([r["best_value"] for r in runs]), _mean(res["retrained"][a]),
                        ", ".join(f"`{r['placement']}`".replace("|", "\\|") for r in runs)))  # fmt: skip
    head = ["arm", "trials in T", "distinct", "supernet training (s)", "best value in search",
            "best retrained", "best placement per seed"]  # fmt: skip
    return table(head, rows)


def _lth4sa(res: dict[str, Any]) -> str:
    rows = [
        row(n, f"`{s['placement']}`".replace("|", "\\|"), s["attention"], s["n_params"],
            _mean(res["accuracy"][n]))
        for n, s in res["schemes"].items()
    ]  # fmt: skip
    f = res["found"]
    tail = (
        f"The scheme: trial {f['trial']} of {f['scored']} scored, supernet score "
        f"{f['supernet_score']:.4f}, EAN reward {f['reward']:.2f}."
    )
    head = ["scheme", "placement", "attention blocks", "parameters", "accuracy [95 % CI]"]
    return table(head, rows) + "\n\n" + tail


ONESHOT_BLOCKS: dict[str, Callable[[Path], str]] = {
    "oneshot_plan": _plan,
    "oneshot_commands": _commands,
    "oneshot_rank_taus": _result("oneshot_rank", _rank),
    "oneshot_search_arms": _result("oneshot_search", _search),
    "oneshot_lth4sa_schemes": _result("oneshot_lth4sa", _lth4sa),
    "oneshot_rank_spread_taus": _result("oneshot_rank_spread", lambda r: _rank(r, "architecture")),
    "oneshot_rank_elastic_taus": _result(
        "oneshot_rank_elastic", lambda r: _rank(r, "architecture")
    ),
}
