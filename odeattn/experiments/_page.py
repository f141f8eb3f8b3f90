"""``python -m odeattn.experiments report``: every table of docs/results.md from the stored files.

The page marks each table as a block ``<!-- table:NAME -->`` … ``<!-- /table -->``; ``report``
rewrites every block from :data:`BLOCKS` (the result files under ``--data``, default
``docs/data``), ``--check`` only compares (exit 1 naming the blocks that differ), and
``--collect OUT`` first copies the result files of a run folder (``run … --out OUT``, or an
``efficiency --out``) into ``--data``. The text between blocks is never touched.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from odeattn._errors import must, unknown_name
from odeattn.experiments._cli_bench import OneLineParser
from odeattn.experiments._commands import commands_table, paper_table
from odeattn.experiments._oneshot_page import ONESHOT_BLOCKS
from odeattn.experiments._oneshot_plan import ONESHOT_CLAIMS
from odeattn.experiments._papers import lth4sa_variants, param_arithmetic
from odeattn.experiments._plan import CLAIM_RULES, LTH_ARMS, PLAN, combine
from odeattn.experiments._sizes import FULL
from odeattn.experiments._stats import fmt_ci, mean_ci
from odeattn.experiments._tables import (
    ci,
    gates_table,
    load,
    missing,
    row,
    source,
    table,
    tests_table,
)

__all__ = ["BLOCKS", "collect", "page_main", "render"]

MARK = re.compile(r"<!-- table:([a-z0-9_]+) -->\n(.*?)<!-- /table -->", re.S)
RUN = "python -m odeattn.experiments run {} --jobs 2 --out runs/evidence"


def _claim_block(claim: str) -> Callable[[Path], str]:
    def render(data: Path) -> str:
        res = load(data, f"{claim}/result.json")
        if res is None:
            return missing(f"{claim}/result.json", RUN.format(claim))
        return tests_table(claim, res) + "\n\n" + source(f"{claim}/result.json", res)

    return render


def _summary(data: Path) -> str:
    rows = []
    for claim in CLAIM_RULES:
        res = load(data, f"{claim}/result.json")
        primary = [t for t in PLAN if t.claim == claim and t.role != "secondary"]
        if res is None:
            rows.append(row(claim, "not run yet", f"planned: {', '.join(t.id for t in primary)}"))
            continue
        word = combine(claim, res["tests"])
        est = "; ".join(
            f"{t['id']} {ci(t['estimate'], t['lo'], t['hi'])}"
            for t in res["tests"]
            if t["role"] != "secondary"
        )
        rows.append(row(claim, f"**{word}**", est))
    return table(["claim", "verdict", "primary tests: estimate [CI]"], rows)


def _plan(data: Path) -> str:
    seeds = {
        "tns_accuracy": f"models: 4 × {FULL.seeds}; benchmark: {FULL.n} architectures × "
        f"{FULL.bench_seeds} seeds, {FULL.bench_epochs} epochs",
    }
    default = f"seeds 0–{FULL.seeds - 1} paired, {FULL.epochs} epochs"
    rows = [
        row(t.claim, t.id, t.role, t.comparison, f"{t.rule} {t.threshold:g}", f"{t.level:.4g}",
            seeds.get(t.claim, default))
        for t in PLAN
        if t.claim not in ONESHOT_CLAIMS  # issue 19's: their own block (oneshot_plan)
    ]  # fmt: skip
    return table(["claim", "test", "role", "comparison", "rule", "CI level", "seeds"], rows)


def _arms(data: Path) -> str:
    v = lth4sa_variants(FULL)
    rows = [row(a, "`" + v[a]["placement"].replace("|", "\\|") + "`") for a in LTH_ARMS]
    return table(["arm", "placement at full size (8 blocks a stage; stages split by \\|)"], rows)


def _dia_arithmetic(data: Path) -> str:
    rows = []
    for fam, r in param_arithmetic().items():
        for m in ("se", "eca", "srm"):
            p = r[m]
            rows.append(row(fam, r["blocks"], m, p["block"], p["stage"], f"{100 * p['cut']:.1f} %"))
    head = ["backbone", "blocks", "module", "params, every block", "params, shared", "cut"]
    return table(head, rows)


def _benchmark(data: Path) -> str:
    rel = "tns_accuracy/summary.json"
    res = load(data, rel)
    if res is None:
        return missing(rel, RUN.format("tns_accuracy"))
    rows = [
        row(
            c["proxy"],
            ci(c["tau"], c["tau_lo"], c["tau_hi"], 2),
            ci(c["rho"], c["rho_lo"], c["rho_hi"], 2),
            ci(c["partial"], c["partial_lo"], c["partial_hi"], 2),
            ci(c["d_params"], c["d_params_lo"], c["d_params_hi"], 2),
        )
        for c in res["correlations"]
    ]
    head = ["proxy", "Kendall τ [95 % CI]", "Spearman ρ", "partial ρ given params", "τ − τ(params)"]
    c = res["noise_ceiling"]
    ceil = (
        f"Noise ceiling τ = {ci(c['tau'], c['tau_lo'], c['tau_hi'], 2)} (n = {c['n']}, "
        f"{c['seeds']} seeds; CI resamples seed pairs and architectures)."
    )
    return table(head, rows) + f"\n\n{ceil}\n\n" + source(rel, res)


def _efficiency(data: Path, part: str) -> str:
    rel = "efficiency/summary.json"
    res = load(data, rel)
    if res is None:
        return missing(rel, "the efficiency command of §2")
    kinds = [k for k in ("single", "multi") if k in res]
    retrained = "retrained" in res.get("single", {})  # each single run's best, fresh seeds
    if part == "arms":
        arms = list(res[kinds[0]]["final"])
        head = ["arm"] + [f"{k}: {m}" for k in kinds for m in ("best accuracy", "HV", "trained")]
        head += ["single: best retrained"] if retrained else []
        rows = []
        for a in arms:
            cells = []
            for k in kinds:
                f, n = res[k]["final"][a], res[k]["trained"][a]
                cells += [_mean(f["best"]), _mean(f["hv"]), _mean(n, 0)]
            cells += [_mean(res["single"]["retrained"][a])] if retrained else []
            rows.append(row(a, *cells))
    else:
        pairs = list(res[kinds[0]]["paired"]["best"])
        head = ["paired difference"] + [f"{k}: {m}" for k in kinds for m in ("best acc.", "HV")]
        head += ["single: best retrained"] if retrained else []
        rows = []
        for p in pairs:
            cells = [ci(*res[k]["paired"][m][p]) for k in kinds for m in ("best", "hv")]
            cells += [ci(*res["single"]["paired"]["retrained"][p])] if retrained else []
            rows.append(row(p, *cells))
    return table(head, rows) + "\n\n" + source(rel, res)


def _mean(vals: list, digits: int = 3) -> str:
    return fmt_ci(*mean_ci([float("nan") if v is None else float(v) for v in vals]), digits)


BLOCKS: dict[str, Callable[[Path], str]] = {
    "summary": _summary,
    "plan": _plan,
    "plan_arms": _arms,
    "benchmark": _benchmark,
    "efficiency_arms": lambda d: _efficiency(d, "arms"),
    "efficiency_paired": lambda d: _efficiency(d, "paired"),
    **{f"claim_{c}": _claim_block(c) for c in CLAIM_RULES},
    "gates": lambda d: (
        gates_table(r)
        if (r := load(d, "attention_tns/result.json"))
        else missing("attention_tns/result.json", RUN.format("attention_tns"))
    ),
    "dia_arithmetic": _dia_arithmetic,
    "commands": lambda d: commands_table(),
    "paper": lambda d: paper_table(),
    **ONESHOT_BLOCKS,
}


def render(text: str, data: Path) -> str:
    """``text`` with every marked block rewritten from ``data``."""

    def one(m: re.Match) -> str:
        name = m.group(1)
        if name not in BLOCKS:
            raise unknown_name("table", name, BLOCKS, "Fix the <!-- table:NAME --> marker.")
        return f"<!-- table:{name} -->\n{BLOCKS[name](data).rstrip()}\n<!-- /table -->"

    return MARK.sub(one, text)


def collect(src: Path, data: Path) -> list[str]:
    """Copy the result files of a run folder into ``data``; the copied paths (relative)."""
    if not src.is_dir():
        raise must("--collect", "be a folder a run wrote (its --out)", str(src))
    pairs = [(src / c / "result.json", f"{c}/result.json") for c in CLAIM_RULES]
    pairs.append((src / "tns_accuracy" / "summary.json", "tns_accuracy/summary.json"))
    summary = src / "summary.json"
    if summary.is_file() and "ref_cost" in json.loads(summary.read_text()):
        pairs.append((summary, "efficiency/summary.json"))
    copied = []
    for path, rel in pairs:
        if path.is_file():
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, data / rel)
            copied.append(rel)
    return copied


def page_main(argv: list[str], prog: str) -> int:
    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--page", default="docs/results.md")
    p.add_argument("--data", default="docs/data")
    p.add_argument("--collect", action="append", default=[], metavar="OUT")
    p.add_argument("--check", action="store_true", help="compare only; exit 1 if they differ")
    args = p.parse_args(argv)
    page, data = Path(args.page), Path(args.data)
    try:
        if not page.is_file():
            raise must("--page", "be the markdown page to rewrite", str(page))
        for src in args.collect:
            print(f"collected from {src}: {', '.join(collect(Path(src), data)) or 'nothing'}")
        text = page.read_text()
        new = render(text, data)
    except ValueError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if args.check:
        old = dict(MARK.findall(text))
        stale = [n for n, body in MARK.findall(new) if old.get(n) != body]
        if stale:
            print(f"{page}: tables differ from {data}: {', '.join(stale)}; run `{prog}`")
            return 1
        return 0
    page.write_text(new)
    return 0
