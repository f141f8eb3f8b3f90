"""Every table of docs/results.md, rendered from the stored result files (or from code).

A table is a function of the data folder (``docs/data``: ``NAME/result.json`` of each claim,
``tns_accuracy/summary.json`` of the benchmark, ``efficiency/summary.json``) returning markdown.
A result table says which file, commit, thread count, CPU and size it comes from; where its
file is not stored yet it says so and names the command. The plan, the arms and the parameter
arithmetic are rendered from code (:mod:`._plan`, :mod:`._papers`): they are not results.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from odeattn.experiments._plan import CLAIM_RULES, combine
from odeattn.experiments._stats import fmt_ci

__all__ = ["ci", "gates_table", "load", "missing", "num", "row", "source", "table", "tests_table"]

COMMAND = "python -m odeattn.experiments"


def num(v: Any) -> float:
    """A stored number (JSON null for NaN) as a float."""
    return math.nan if v is None else float(v)


def ci(est: Any, lo: Any, hi: Any, digits: int = 3) -> str:
    return fmt_ci(num(est), num(lo), num(hi), digits=digits)


def row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(head: list[str], rows: list[str]) -> str:
    return "\n".join([row(*head), row(*["---"] * len(head)), *rows])


def load(data: Path, rel: str) -> dict[str, Any] | None:
    """``data/rel`` as JSON, or None when it is not stored."""
    path = data / rel
    return json.loads(path.read_text()) if path.is_file() else None


def missing(rel: str, command: str) -> str:
    return (
        f"*Not run yet: `docs/data/{rel}` is not stored. Run `{command}`, then "
        f"`{COMMAND} report --collect OUT` (OUT: the folder given to `--out`).*"
    )


def source(rel: str, res: dict[str, Any]) -> str:
    """The line under a result table: file, commit, threads, CPU, torch, size."""
    p = res.get("provenance") or {}
    dirty = " (uncommitted changes)" if p.get("dirty") else ""
    size = f", size {res['size_name']}" if "size_name" in res else ""
    return (
        f"*From `docs/data/{rel}`: commit {str(p.get('commit', '?'))[:10]}{dirty}, "
        f"{p.get('threads', '?')} torch thread(s) a run, {p.get('cpu', '?')}, torch "
        f"{p.get('torch', '?')}{size}; `{p.get('command', '?')}`.*"
    )


def tests_table(claim: str, res: dict[str, Any]) -> str:
    """One row per pre-registered test of a claim: estimate [CI], threshold, rule, verdict."""
    rows = [
        row(
            t["id"],
            t["role"],
            t["comparison"],
            f"{ci(t['estimate'], t['lo'], t['hi'])} ({100 * t['level']:.1f} %)",
            f"{t['rule']} {t['threshold']:g}",
            f"**{t['verdict']}**" if t["role"] == "primary" else t["verdict"],
        )
        for t in res["tests"]
    ]
    head = ["test", "role", "comparison", "estimate [CI]", "rule", "verdict"]
    word = combine(claim, res["tests"])
    return table(head, rows) + f"\n\nClaim verdict ({_rule_text(claim)}): **{word}**."


def _rule_text(claim: str) -> str:
    return {"all": "every primary test held", "any": "some primary test held"}[CLAIM_RULES[claim]]


def gates_table(res: dict[str, Any]) -> str:
    """Mean gate Δt of every block (mean over seeds), one row per variant, stage by stage."""
    rows = []
    for v, blocks in res["gates"].items():
        stages: dict[int, list[str]] = {}
        for b in blocks:
            stages.setdefault(b["stage"], []).append(f"{b['gate']:.2f}")
        rows.append(row(v, *(" ".join(g) for _, g in sorted(stages.items()))))
    n = max((len({b["stage"] for b in bl}) for bl in res["gates"].values()), default=0)
    return table(["variant", *(f"stage {s + 1} (block 1 …)" for s in range(n))], rows)
