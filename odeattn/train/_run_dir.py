"""The train CLI's output folder and checkpoint, checked before anything is written.

* :func:`checked_checkpoint`: ``--resume`` reads ``OUT/checkpoint.pt`` (``weights_only=True``) and
  compares its parameter names and shapes with the model's ``state_dict``; a garbage, truncated
  or empty file, or one written by another architecture, is a :class:`UsageError` (exit 2, one
  line) instead of a pickle/zip/EOF or ``load_state_dict`` traceback, and ``model.yaml`` stays.
* :func:`free_out`: a run never writes over another run's folder (``model.yaml`` of another
  architecture): the default folder gets a ``-2``, ``-3``, … suffix; an explicit ``--out`` is
  refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from odeattn.models import load_checkpoint

__all__ = ["UsageError", "checked_checkpoint", "free_out"]


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


def checked_checkpoint(ckpt: Path, model: Any) -> int:
    """The epoch a valid checkpoint of *this* architecture reached; UsageError otherwise
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
    return int(ck.get("epoch", 0))


def _other_run(folder: Path, model: Any) -> bool:
    """Whether ``folder`` holds a run (its ``model.yaml``) of an architecture other than ``model``."""
    if not (folder / "model.yaml").is_file():
        return False
    return (yaml.safe_load((folder / "model.yaml").read_text()) or {}).get("model") != model


def free_out(out: Path, document: dict[str, Any], explicit: bool) -> Path:
    """Never write over another run: the default folder gets a -2, -3, … suffix when it holds a
    run of another architecture; an explicit --out that does is refused."""
    mine = yaml.safe_load(yaml.safe_dump(document["model"]))  # as model.yaml will hold it
    if not _other_run(out, mine):
        return out
    if explicit:
        raise UsageError(
            f"--out {out} holds a run of another architecture; choose another --out "
            "(nothing was written)"
        )
    n = 2
    while _other_run(out.with_name(f"{out.name}-{n}"), mine):
        n += 1
    return out.with_name(f"{out.name}-{n}")
