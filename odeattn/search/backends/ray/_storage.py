"""Optuna storages that Ray worker processes can open: absolute file paths, one object per process.

A Ray trial runs in another process (and directory, or host), so the driver's storage URL is made
absolute (``sqlite:///rel.db`` and journal-file paths), in-memory storage is refused, and a
cluster (``--address``) needs a server RDB (``postgresql+psycopg2://user@host:port/db``) that
every node reaches. :func:`open_storage` keeps one storage object per process and URL.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from odeattn.search.storage import make_storage

__all__ = ["open_storage", "resolve_storage_url"]


def resolve_storage_url(url: str, *, cluster: bool = False) -> str:
    """Make file storages absolute (Ray workers run in other directories); check cluster use.

    ``sqlite:///rel.db`` and journal-file paths (no ``://``) become absolute; in-memory storage is
    refused (workers are other processes); with ``cluster=True`` only a server RDB is accepted.
    """
    text = str(url).strip()
    if (
        not text
        or text in (":memory:", "sqlite://", "sqlite:///:memory:")
        or text.startswith("memory")
    ):
        raise ValueError(
            f"the ray backend needs a storage that worker processes can open, but got "
            f"storage={url!r}; use a journal file, sqlite:///FILE or postgresql://…"
        )
    server = "://" in text and not text.startswith("sqlite")
    if cluster and not server:
        raise ValueError(
            f"a Ray cluster (`--address`) needs a server database every node reaches, "
            f"but got storage={url!r}; use postgresql+psycopg2://user@host:port/db"
        )
    if "://" not in text:
        return str(Path(text).expanduser().resolve())
    if text.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(text[len("sqlite:///") :]).expanduser().resolve())
    return text


@functools.cache
def _cached(pid: int, url: str) -> Any:
    return make_storage(url)


def open_storage(url: str) -> Any:
    """One Optuna storage object per process and URL (``_storage.make_storage``: RDB with
    heartbeats for URLs, a journal file for paths), reused across trials of a reused Ray actor."""
    return _cached(os.getpid(), str(url))
