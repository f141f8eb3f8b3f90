"""``python -m odeattn.stiffness``: measure NSI/TNS of one or more models side by side.

    python -m odeattn.stiffness --model digits_resnet --model "digits_resnet:adaptor=se" \\
        --data digits --out runs/stiffness

A model is a registered name, optionally with keyword arguments after a colon
(``name:key=value,key=value``, values read as YAML), an ``--arch`` YAML/JSON file holding an
architecture dict, or a ``--checkpoint`` written by ``odeattn.train`` (its "architecture" entry
builds the model when no --model/--arch is given; otherwise checkpoints pair with models in
order). Prints a table, writes ``report.json`` and the PNGs of StepNet Figs. 2, 3, 6 and 7.
Bad input exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
import yaml
from rich.console import Console
from rich.table import Table

from odeattn.data import load_dataset
from odeattn.models import create_model, load_checkpoint
from odeattn.stiffness import _plots as plots
from odeattn.stiffness import _tns
from odeattn.stiffness._measure import measure
from odeattn.stiffness._metrics import delta_grid, stiffness_proportion_grid
from odeattn.stiffness._recorder import NSI_DEFINITIONS

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m odeattn.stiffness", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=[], help="NAME or NAME:key=value,...")
    p.add_argument("--arch", action="append", default=[], help="YAML/JSON architecture file")
    p.add_argument("--checkpoint", action="append", default=[], help="odeattn.train checkpoint")
    p.add_argument("--data", required=True, help="dataset name for odeattn.data.load_dataset")
    p.add_argument("--data-root", default=None, help="directory of file datasets")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--kind", default="step", choices=list(NSI_DEFINITIONS), help="NSI definition")
    p.add_argument("--mu", default="sample", choices=list(_tns.MU_MODES), help="stage mean μ")
    p.add_argument("--include-first", action="store_true", help="measure first block of stages")
    p.add_argument("--samples", type=int, default=None, help="at most this many samples")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--grid", type=int, default=41, help="levels per axis of the δ / p̂ maps")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help="seed for models built without weights")
    p.add_argument("--per-sample", action="store_true", help="keep per-sample NSI in the JSON")
    return p


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += 1 if ch in "[{(" else -1 if ch in "]})" else 0
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur] if cur else parts


def _spec(text: str) -> dict[str, Any]:
    name, _, rest = text.partition(":")
    arch: dict[str, Any] = {"name": name.strip()}
    for item in _split_top(rest):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"`--model` options must be key=value, but got {item!r} in {text!r}")
        arch[key.strip()] = yaml.safe_load(value)
    return arch


def _arch_file(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        arch = yaml.safe_load(f)
    for key in ("model", "architecture"):  # train/search YAML (`model:`) or checkpoint-style
        if isinstance(arch, dict) and isinstance(arch.get(key), dict):
            arch = arch[key]
            break
    if not isinstance(arch, dict) or "name" not in arch:
        raise ValueError(f"`--arch` {path} must hold a mapping with a 'name' key (an architecture)")
    return arch


def _entries(args: argparse.Namespace) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """(label, architecture or None, checkpoint or None) per model."""
    archs = [(m, _spec(m)) for m in args.model] + [(a, _arch_file(a)) for a in args.arch]
    ckpts = list(args.checkpoint)
    if not archs and not ckpts:
        raise ValueError("give at least one --model, --arch or --checkpoint")
    if archs and ckpts and len(ckpts) != len(archs):
        raise ValueError(
            f"--checkpoint must be given once per model ({len(archs)}) or not at all, "
            f"but got {len(ckpts)}"
        )
    if not archs:
        return [(Path(c).stem, None, c) for c in ckpts]
    return [(label, arch, ckpts[i] if ckpts else None) for i, (label, arch) in enumerate(archs)]


def _build(arch: dict[str, Any] | None, ckpt: str | None, seed: int, device: str):

    state = None
    if ckpt is not None:
        loaded = load_checkpoint(ckpt)
        state, arch = loaded["model"], arch or loaded.get("architecture")
        if arch is None:
            raise ValueError(f"checkpoint {ckpt} has no 'architecture'; pass --model or --arch")
    torch.manual_seed(seed)
    arch = dict(arch)
    model = create_model(arch.pop("name"), **arch)
    if state is not None:
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"checkpoint {ckpt} does not fit the model: missing {list(missing)[:3]}, "
                f"unexpected {list(unexpected)[:3]}; pass the architecture it was trained with"
            )
    return model.to(device)


def _levels(reports: list[dict[str, Any]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Common M1 / M2 levels for all models: up to the 99th percentile of max NSI/μ − 1 and NSI."""
    a_hi = b_hi = 1e-6
    for rep in reports:
        z = _tns.as_nsi(rep["per_sample"]["nsi"])
        inv, ids = _tns.stage_index(rep["stage"], z.shape[1])
        r = np.broadcast_to(_tns.ratios(z, inv, len(ids), rep["mu"]), z.shape)
        a_hi = max(a_hi, float(np.quantile(np.where(z > 0, r - 1.0, 0.0).max(1), 0.99)))
        b_hi = max(b_hi, float(np.quantile(z.max(1), 0.99)))
    return np.linspace(0.0, a_hi, n), np.linspace(0.0, b_hi, n)


def _figures(reports: list[dict[str, Any]], labels: list[str], out: Path, grid: int) -> dict:

    m1, m2 = _levels(reports, grid)
    deltas, props, curves = {}, {}, {}
    for label, rep in zip(labels, reports):
        z, stage, mu = rep["per_sample"]["nsi"], rep["stage"], rep["mu"]
        deltas[label] = (m1, m2, delta_grid(z, stage, m1, m2, mu=mu))
        props[label] = (m1, m2, stiffness_proportion_grid(z, stage, m1, m2, mu=mu))
        blocks = rep["blocks"]
        curves[label] = {
            "mean": [b["mean"] for b in blocks],
            "stage": stage,
            "low": [b["quantiles"].get("0.25", b["mean"]) for b in blocks],
            "high": [b["quantiles"].get("0.75", b["mean"]) for b in blocks],
        }
    kind = reports[0]["definition"]
    files = {
        "delta": plots.plot_level_maps(deltas, out / "delta.png", title=f"δ(M1, M2), NSI={kind}"),
        "nsi_depth": plots.plot_nsi_depth(curves, out / "nsi_depth.png", title=f"NSI ({kind})"),
        "stiffness_proportion": plots.plot_level_maps(
            props, out / "stiffness_proportion.png", label="p̂(M1, M2)", title="stiffness proportion"
        ),
    }
    acc = [rep["accuracy"] for rep in reports]
    result: dict[str, Any] = {"files": {k: str(v) for k, v in files.items()}}
    if len(reports) >= 2 and all(a is not None for a in acc):
        path, corr = plots.plot_tns_accuracy(
            labels, [r["tns"] for r in reports], acc, out / "tns_accuracy.png"
        )
        result["files"]["tns_accuracy"] = str(path)
        result["correlation"] = corr
    return result


def _table(labels: list[str], reports: list[dict[str, Any]]) -> None:

    kind = reports[0]["definition"]
    other = "fd" if kind == "step" else "step"
    table = Table(
        title=f"stiffness: NSI = {kind} ({NSI_DEFINITIONS[kind]}), μ per {reports[0]['mu']}"
    )
    for col in (
        "model",
        "N",
        "L",
        "accuracy",
        f"TNS ({kind})",
        f"TNS ({other})",
        "mean NSI",
        "p̂(0,0)",
    ):
        table.add_column(col, justify="left" if col == "model" else "right", overflow="fold")
    for label, rep in zip(labels, reports):
        acc = "—" if rep["accuracy"] is None else f"{rep['accuracy']:.4f}"
        table.add_row(
            label,
            str(rep["n_samples"]),
            str(rep["n_blocks"]),
            acc,
            f"{rep['tns']:.5g}",
            f"{rep['tns_by_definition'][other]:.5g}",
            f"{np.mean([b['mean'] for b in rep['blocks']]):.4g}",
            f"{rep['stiffness_proportion'][0]['p_hat']:.3f}",
        )
    Console(width=max(120, Console().width)).print(table)


def _run(args: argparse.Namespace) -> dict[str, Any]:

    if args.grid < 2 or args.batch_size < 1 or (args.samples is not None and args.samples < 1):
        raise ValueError("--grid must be >= 2, --batch-size and --samples >= 1")
    entries = _entries(args)
    data = load_dataset(args.data, args.data_root, device=args.device)
    labels, reports = [], []
    for label, arch, ckpt in entries:
        model = _build(arch, ckpt, args.seed, args.device)
        rep = measure(
            model,
            data,
            split=args.split,
            kind=args.kind,
            mu=args.mu,
            include_first=args.include_first,
            batch_size=args.batch_size,
            per_sample=True,
            max_samples=args.samples,
        )
        rep["model"] = {
            "label": label,
            "architecture": getattr(model, "architecture", dict)(),
            "checkpoint": ckpt,
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        labels.append(label)
        reports.append(rep)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(reports, labels, out, args.grid)
    if not args.per_sample:
        for rep in reports:
            rep.pop("per_sample")
    summary = {"data": args.data, "split": args.split, "models": reports, **figures}
    (out / "report.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    _table(labels, reports)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except (ValueError, TypeError, KeyError, OSError, RuntimeError, yaml.YAMLError) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"python -m odeattn.stiffness: error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
