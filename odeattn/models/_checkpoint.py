"""Training checkpoints: one plain dict, written atomically, read with ``weights_only=True``.

Layout (format 1)::

    {"format": 1, "epoch": int,                 # epochs completed
     "model": state_dict, "architecture": dict | None,   # model.architecture() when it exists
     "optimizer": state_dict | None, "scheduler": state_dict | None,
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor, ...], "data": ByteTensor | None},
     "config": dict | None, "data": dict | None, "history": [per-epoch metrics, ...]}

Only tensors and plain Python values are stored, so ``torch.load(weights_only=True)`` reads it
without running code. The file is written to a temporary sibling, flushed and fsynced, then
``os.replace``-d over the target: a crash leaves either the old or the new checkpoint. A SIGKILL
mid-write leaves the sibling ``.NAME.tmp<pid>`` behind (no ``finally`` runs); every save first
removes those of processes that are gone (:func:`remove_stale_tmp`), and a clean exit, an
exception or Ctrl-C removes its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "FORMAT",
    "load_checkpoint",
    "plain",
    "remove_stale_tmp",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

FORMAT = 1


def plain(obj: Any, where: str = "architecture") -> Any:
    """``obj`` with tuples as lists, checked to hold only str/int/float/bool/None/list/dict."""
    if obj is None or isinstance(obj, str | bool | int | float):
        return obj
    if isinstance(obj, list | tuple):
        return [plain(v, where) for v in obj]
    if isinstance(obj, dict):
        return {str(k): plain(v, where) for k, v in obj.items()}
    raise TypeError(
        f"`{where}` must hold only plain values (str, numbers, lists, dicts), but found "
        f"{type(obj).__name__}: {obj!r}"
    )


def rng_state(data_generator: torch.Generator | None = None) -> dict[str, Any]:
    cuda = (
        torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else []
    )
    return {
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "data": data_generator.get_state() if data_generator is not None else None,
    }


def set_rng_state(state: dict[str, Any], data_generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if data_generator is not None and state.get("data") is not None:
        data_generator.set_state(state["data"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_tmp(path: str | os.PathLike) -> list[Path]:
    """Delete the ``.NAME.tmp<pid>`` siblings of ``path`` whose writer (``pid``) is no longer
    running: what a kill during an atomic write leaves. A live writer's file is kept."""
    path = Path(path)
    prefix = f".{path.name}.tmp"
    stale = [
        p
        for p in (path.parent.glob(f"{prefix}*") if path.parent.is_dir() else [])
        if p.name[len(prefix) :].isdigit() and not _alive(int(p.name[len(prefix) :]))
    ]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    epoch: int = 0,
    config: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    rng: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> Path:
    """Write a checkpoint of ``model`` (and optimiser, scheduler, RNG) atomically to ``path``."""
    path = Path(path)
    model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper -> the module itself
    arch = plain(model.architecture()) if callable(getattr(model, "architecture", None)) else None
    obj = {
        "format": FORMAT,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "architecture": arch,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng if rng is not None else rng_state(),
        "config": plain(config, "config"),
        "data": plain(data, "data"),
        "history": plain(history or [], "history"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{path} is not an odeattn checkpoint (no 'model' entry)")
    if ckpt.get("format", FORMAT) > FORMAT:
        raise ValueError(
            f"{path} has checkpoint format {ckpt['format']}, newer than this odeattn ({FORMAT})"
        )
    return ckpt
