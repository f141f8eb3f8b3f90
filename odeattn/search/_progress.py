"""What a search prints while it runs: a line per finished trial, and per epoch when the output is
a file or a pipe (a live progress bar only on a terminal)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

__all__ = ["progress_cb"]


def progress_cb(console: Any, bar: Any, task: Any) -> Any:
    def cb(kind: str, info: dict[str, Any]) -> None:
        n = info.get("trial")
        if kind == "start":
            bar.update(task, description=f"trial {n}: building")
        elif kind == "epoch":
            acc = info.get("val_accuracy")
            line = f"trial {n}: epoch {info['epoch']}" + (
                f", val acc {acc:.3f}" if acc is not None else ""
            )
            bar.update(task, description=line)
            if not console.is_terminal:  # a log file sees each epoch, not only finished trials
                console.print(line, highlight=False)
        elif kind in ("done", "pruned"):
            bar.advance(task)
            extra = ", ".join(
                f"{k}={info[k]:.4g}"
                for k in ("val_accuracy", "tns", "attention_blocks")
                if k in info
            )
            console.print(
                f"trial {n} {'complete' if kind == 'done' else 'pruned'}: {extra} "
                f"({info.get('epochs_run', 0):.0f} epochs, {info.get('seconds', 0):.1f} s)"
            )
        elif kind == "fail":
            bar.advance(task)
            console.print(f"[red]trial {n} failed[/]: {escape(str(info['error']))}")  # issue 12
        elif kind == "waiting":  # another worker trains the same configuration (issue 20)
            line = f"trial {n}: waiting for trial {info['for']} (same configuration)"
            bar.update(task, description=line)
            if not console.is_terminal:
                console.print(line, highlight=False)
        elif kind == "requeued":
            console.print(f"trial {n} stopped ({info['why']}): re-queued for the next run")

    return cb
