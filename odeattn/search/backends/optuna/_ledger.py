"""What the worker loop needs from every trial of its study, kept incrementally (issue 20).

Each turn of the loop asks four questions of the whole study: how much budget is used, is the
trial just asked surplus, was its configuration seen before, and — at each epoch a pruning rule
decides — what did the other trials report at that epoch (and, with a TNS screen, their screen
scores). Answering each by a scan of every trial makes a study of N trials cost O(N²). A finished
trial never changes (Optuna refuses to update it), so a :class:`Ledger` folds each finished trial
in once, by trial number, and keeps only what the questions need:

* the number of finished trials that count toward the budget (``storage.counts``) and a flag
  per trial number, so "counted trials with a number ≤ n" is the total minus a count over the few
  numbers above n;
* an index ``params → the two earliest COMPLETE or PRUNED trials`` (the duplicate lookup: the
  earliest other than the asking trial) and, among the unfinished trials, the one that claimed
  the training of given params (``_duplicate.claim``);
* the ``intermediate`` attributes of COMPLETE and PRUNED trials, with a growing array per (keys,
  epoch) that each pruning decision extends by the trials finished since the last one;
* the screen scores of COMPLETE and PRUNED trials.

Trials not yet finished (RUNNING, WAITING) are read afresh at every :meth:`Ledger.refresh`. On an
RDB storage a refresh reads only the new and the unfinished trials (``storage.changed_trials``:
Optuna's cache, keyed by number); elsewhere (journal, in memory) it takes Optuna's list of every
trial, whose building is O(N) but cheap next to a trial.
Every answer equals the full scan it replaces (``tests/test_search_scale.py``).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from odeattn.search.storage import changed_trials, counts

__all__ = ["Ledger", "ledger", "row"]

_REF = (TrialState.COMPLETE, TrialState.PRUNED)


def _changed(s: optuna.Study, since: int, numbers: list[int]) -> tuple[int, Any]:
    """(number of trials, number -> trial or None) covering the trials numbered ``since`` or
    more and ``numbers``: incrementally from an RDB storage's cache (``storage.changed_trials``),
    else from the list of every trial (journal, in memory: O(N) per read, Optuna's)."""
    got = changed_trials(s, since, numbers)
    if got is not None:
        return got[0], got[1].get
    trials = s.get_trials(deepcopy=False)  # by number: trial i has number i
    if not trials or trials[-1].number == len(trials) - 1:
        return len(trials), lambda k: trials[k] if k < len(trials) else None
    by = {t.number: t for t in trials}  # a gap: look up by number
    return max(by) + 1, by.get


def _key(params: dict[str, Any]) -> frozenset:
    return frozenset(params.items())  # equal exactly when the dicts are equal (hashable values)


def _at(hist: dict[str, list[Any]], key: str, epoch: int) -> float | None:
    vals = hist.get(key) or []
    v = vals[epoch - 1] if len(vals) >= epoch else None
    return float(v) if v is not None and math.isfinite(v) else None


def row(hist: dict[str, list[Any]], keys: Sequence[str], epoch: int) -> list[float] | None:
    """The values of ``keys`` at ``epoch`` in an ``intermediate`` attribute, if all are finite."""
    vec = [_at(hist, k, epoch) for k in keys]
    return None if any(v is None for v in vec) else vec  # type: ignore[return-value]


class _Rows:
    """A growing (m, d) float array and the trial number of each row: appends in amortised O(1)."""

    def __init__(self, d: int) -> None:
        self.data, self.numbers = np.empty((64, d)), np.empty(64, dtype=np.int64)
        self.m = self.consumed = 0

    def add(self, r: list[float], number: int) -> None:
        if self.m == len(self.data):
            self.data = np.concatenate([self.data, np.empty_like(self.data)])
            self.numbers = np.concatenate([self.numbers, np.empty_like(self.numbers)])
        self.data[self.m], self.numbers[self.m] = r, number
        self.m += 1

    def without(self, number: int) -> np.ndarray:
        """The rows, less trial ``number``'s (a finished trial asking about itself)."""
        return self.data[: self.m][self.numbers[: self.m] != number]


class Ledger:
    """Incremental answers about one ``optuna.Study`` (see the module docstring)."""

    def __init__(self, s: optuna.Study) -> None:
        self._study = weakref.ref(s)  # not a strong reference: the ledger dies with its study
        self._n = 0  # trials numbered below this were looked at
        self._open: dict[int, FrozenTrial | None] = {}  # number -> unfinished (None: unread)
        self._flags = bytearray()  # per number: 1 = finished and counted
        self._counted = 0
        self._first: dict[frozenset, list[FrozenTrial]] = {}
        self._hists: list[tuple[int, dict[str, list[Any]]]] = []  # (number, intermediate)
        self._rows: dict[tuple[tuple[str, ...], int], _Rows] = {}
        self._scores: list[float] = []

    def refresh(self) -> None:
        """Fold in the trials that finished since the last refresh; re-read the unfinished.
        A number not readable yet (another process's trial in flight) is looked up again."""
        s = self._study()
        assert s is not None, "the ledger's study is gone"
        n, lookup = _changed(s, self._n, list(self._open))
        if len(self._flags) < n:
            self._flags.extend(bytes(n - len(self._flags)))
        for k in [*self._open, *range(self._n, n)]:
            t = lookup(k)
            if t is not None and t.state.is_finished():
                self._open.pop(k, None)
                self._ingest(t)
            else:
                self._open[k] = t
        self._n = max(self._n, n)

    def _ingest(self, t: FrozenTrial) -> None:
        if counts(t):
            self._flags[t.number] = 1
            self._counted += 1
        if t.state not in _REF:
            return
        first = self._first.setdefault(_key(t.params), [])  # the two earliest, by number
        first[:] = sorted([*first, t], key=lambda f: f.number)[:2]
        self._hists.append((t.number, t.user_attrs.get("intermediate") or {}))
        score = t.user_attrs.get("screen_score")
        if score is not None:
            self._scores.append(float(score))

    def budget_used(self) -> int:
        """Trials that count toward ``budget.n_trials`` (``storage.budget_used``)."""
        self.refresh()
        return self._counted + sum(t is not None and counts(t) for t in self._open.values())

    def counted_up_to(self, number: int) -> int:
        """Counted trials with a number ≤ ``number`` (call :meth:`refresh` first)."""
        above = self._flags.count(1, number + 1)
        opened = sum(t is not None and counts(t) for n, t in self._open.items() if n <= number)
        return self._counted - above + opened

    def duplicate(self, params: dict[str, Any], number: int) -> FrozenTrial | None:
        """The earliest COMPLETE or PRUNED trial with exactly ``params``, other than ``number``.
        Reads the study only if trial ``number`` is new to the ledger (the worker's claim,
        ``_duplicate.claim``, reads it under the study's lock just before)."""
        if number >= self._n:
            self.refresh()
        return next((t for t in self._first.get(_key(params), ()) if t.number != number), None)

    def trainer(self, params: dict[str, Any], number: int, mark: str) -> int | None:
        """The number of a RUNNING trial other than ``number`` with exactly ``params`` that
        carries the user attribute ``mark`` (it claimed their training; call :meth:`refresh`
        first). Looks at the unfinished trials only: a few, one per worker."""
        for n, t in self._open.items():
            running = n != number and t is not None and t.state == TrialState.RUNNING
            if running and t.user_attrs.get(mark) and t.params == params:
                return n
        return None

    def finished(self, number: int) -> bool:
        """Whether trial ``number`` exists and is finished (reads the study)."""
        self.refresh()
        return number < self._n and number not in self._open

    def reference(self, keys: Sequence[str], epoch: int, number: int) -> np.ndarray:
        """(m, len(keys)) values at ``epoch`` of every COMPLETE, PRUNED or RUNNING trial other
        than ``number`` that reported all ``keys`` finitely (the pruning rules' reference set)."""
        self.refresh()
        rows = self._rows.setdefault((tuple(keys), epoch), _Rows(len(keys)))
        for n, hist in self._hists[rows.consumed :]:
            r = row(hist, keys, epoch)
            if r is not None:
                rows.add(r, n)
        rows.consumed = len(self._hists)
        running = [
            r
            for n, t in self._open.items()
            if t is not None and t.state == TrialState.RUNNING and n != number
            for r in [row(t.user_attrs.get("intermediate") or {}, keys, epoch)]
            if r is not None
        ]
        done = rows.data[: rows.m] if number in self._open else rows.without(number)
        return np.concatenate([done, np.asarray(running, float).reshape(-1, len(keys))])

    def screen_scores(self) -> list[float]:
        """Screen scores of the COMPLETE and PRUNED trials, in the order they were folded in
        (the list is the ledger's own: read it, do not change it)."""
        self.refresh()
        return self._scores


_LEDGERS: weakref.WeakKeyDictionary[optuna.Study, Ledger] = weakref.WeakKeyDictionary()


def ledger(s: optuna.Study) -> Ledger:
    """The ledger of study object ``s`` (one per object, made on first use)."""
    if s not in _LEDGERS:
        _LEDGERS[s] = Ledger(s)
    return _LEDGERS[s]
