"""The train CLI's output folder: whose run it holds, how far it got, its log after a crash.

* **Identity** (:func:`identity`). A folder holds one run: its ``model.yaml`` names the
  architecture, the data (name, split fraction and seed; not where the files are) and the recipe
  with its changed fields. The identity is that document *resolved*: the architecture, the data
  with ``load_dataset``'s defaults filled in, and every :class:`TrainConfig` field that changes the
  result (not ``device``, ``compile``, ``channels_last``, ``eval_batch_size``), so ``--epochs 5``
  and ``--epochs 15`` of one architecture are two runs. :func:`free_out` never writes over
  another run: the default folder gets a ``-2``, ``-3``, … suffix, an explicit ``--out`` holding
  another run is refused, naming what differs.
* **Status** (:func:`status`). The same run again: finished (the log ends with the final record of
  all its epochs) is nothing to do; stopped after a checkpoint needs ``--resume``.
* **Checkpoint** (:func:`checked_checkpoint`). ``--resume`` reads ``OUT/checkpoint.pt``
  (``weights_only=True``) and compares parameter names and shapes with the model; a garbage,
  truncated or empty file, or another architecture's, is a :class:`UsageError` (exit 2, one line).
* **Log after a kill** (:func:`rewrite_log`). ``log.jsonl`` is written before the checkpoint of
  the same epoch, so a SIGKILL can leave it ahead of the checkpoint, with a torn last line. On
  resume it is rewritten (atomically) from the checkpoint's history: each epoch the checkpoint
  holds, once, in order.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from pathlib import Path
from typing import Any

import yaml

from odeattn.data import load_dataset
from odeattn.models import load_checkpoint
from odeattn.train._recipes import RECIPES, TrainConfig

__all__ = [
    "UsageError",
    "checked_checkpoint",
    "free_out",
    "identity",
    "rewrite_log",
    "status",
]

HOW = ("device", "compile", "channels_last", "eval_batch_size")  # how it runs, not what it learns
_DATA_DEFAULTS = {
    k: p.default
    for k, p in inspect.signature(load_dataset).parameters.items()
    if k in ("val_fraction", "seed")
}


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


def identity(document: dict[str, Any]) -> dict[str, Any]:
    """The resolved run of a ``model.yaml`` document, flat: ``model.*``, ``data.*``, ``train.*``.
    Raises ValueError when its recipe or training fields are not valid here."""
    doc = yaml.safe_load(yaml.safe_dump(document))  # as model.yaml holds it (tuples as lists)
    train = dict(doc.get("train") or {})
    recipe = train.pop("recipe", None)
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}")
    cfg = dataclasses.asdict(TrainConfig.from_dict(train, RECIPES[recipe]))
    data = {**_DATA_DEFAULTS, **(doc.get("data") or {})}
    data.pop("root", None)
    flat = {f"model.{k}": v for k, v in (doc.get("model") or {}).items()}
    flat |= {f"data.{k}": v for k, v in data.items()}
    flat |= {f"train.{k}": list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
    return {k: v for k, v in flat.items() if k.removeprefix("train.") not in HOW}


def _held(folder: Path) -> dict[str, Any] | None:
    """The identity of the run in ``folder`` (None: no run); ``{}`` for one unreadable here."""
    try:
        text = (folder / "model.yaml").read_text()
    except FileNotFoundError:
        return None
    try:
        return identity(yaml.safe_load(text) or {})
    except (ValueError, TypeError, yaml.YAMLError, AttributeError):
        return {}


def _differences(theirs: dict[str, Any], mine: dict[str, Any]) -> str:
    if not theirs:
        return "its model.yaml cannot be read by this version"
    keys = sorted(k for k in {*theirs, *mine} if theirs.get(k) != mine.get(k))
    shown = [f"{k}={theirs.get(k)!r} there, {mine.get(k)!r} here" for k in keys[:3]]
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    return "; ".join(shown) + more


def free_out(out: Path, document: dict[str, Any], explicit: bool) -> Path:
    """The folder this run writes: ``out`` when it is empty or holds this very run; otherwise the
    next free ``out-2``, ``out-3``, … (default folder) or a UsageError (explicit ``--out``)."""
    mine = identity(document)
    theirs = _held(out)
    if theirs is None or theirs == mine:
        return out
    if explicit:
        raise UsageError(
            f"--out {out} holds another run ({_differences(theirs, mine)}); use another --out, "
            "or drop --out to get a free folder (nothing was written)"
        )
    n = 2
    while (theirs := _held(out.with_name(f"{out.name}-{n}"))) is not None and theirs != mine:
        n += 1
    return out.with_name(f"{out.name}-{n}")


def status(out: Path, epochs: int) -> dict[str, Any] | None:
    """The final record when ``out/log.jsonl`` ends with the one of a run of ``epochs`` epochs
    (finished), else None."""
    try:
        lines = (out / "log.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return None
    try:
        last = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:  # torn by a kill
        return None
    done = isinstance(last, dict) and last.get("final") and last.get("epochs_run") == epochs
    return last if done else None


def checked_checkpoint(ckpt: Path, model: Any) -> tuple[int, list[dict[str, Any]]]:
    """(epochs done, history) of a valid checkpoint of *this* architecture; UsageError otherwise
    (garbage, truncated, empty, or written by another model), before anything is written."""
    try:
        ck = load_checkpoint(ckpt)
    except Exception as e:  # torch's UnpicklingError / zip / EOF errors, or not an odeattn file
        why = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        raise UsageError(
            f"--resume: {ckpt} is not a readable odeattn checkpoint ({why}); "
            "delete it to start over, or use another --out"
        ) from None
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(getattr(v, "shape", ())) for k, v in (ck.get("model") or {}).items()}
    if want != have:
        diff = sorted(set(want) ^ set(have)) or [k for k in want if want[k] != have[k]]
        raise UsageError(
            f"--resume: {ckpt} was written by another architecture ({len(diff)} parameter(s) "
            f"differ, e.g. {diff[0]!r}); use the --model/--arch of the run that wrote it, "
            "or another --out"
        )
    return int(ck.get("epoch", 0)), list(ck.get("history") or [])


def rewrite_log(log: Path, history: list[dict[str, Any]], epoch: int) -> None:
    """``log`` := one line per epoch of ``history`` up to ``epoch`` (what the checkpoint holds),
    written to a sibling and renamed over it: records of epochs after the checkpoint, duplicates
    from earlier resumes, a torn last line and an earlier final record are gone."""
    tmp = log.with_name(f".{log.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            for h in history:
                if int(h.get("epoch", 0)) <= epoch:
                    f.write(json.dumps(h) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, log)
    finally:
        tmp.unlink(missing_ok=True)
