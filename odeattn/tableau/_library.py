"""The built-in tableau library as a read-only mapping that is built on first use.

Building it checks every method's declared order against the rooted-tree conditions (exact
arithmetic, up to order p + 1; RKCNN Eq. 2–3, Butcher 2008 §31), which is real work (~0.1 s), so
``import odeattn.tableau`` does not do it: the first lookup, iteration or ``len`` does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType

from odeattn.tableau._butcher import ButcherTableau

__all__ = ["Library"]


class Library(Mapping[str, ButcherTableau]):
    """``name -> ButcherTableau``, read-only; ``build()`` runs once, at the first access."""

    def __init__(self, build: Callable[[], dict[str, ButcherTableau]]) -> None:
        self._build = build
        self._items: Mapping[str, ButcherTableau] | None = None
        self._lock = threading.Lock()

    def _data(self) -> Mapping[str, ButcherTableau]:
        if self._items is None:
            with self._lock:
                if self._items is None:
                    self._items = MappingProxyType(self._build())
        return self._items

    def __getitem__(self, name: str) -> ButcherTableau:
        return self._data()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __contains__(self, name: object) -> bool:
        return name in self._data()

    def __repr__(self) -> str:
        return f"Library({sorted(self._data())})"
