"""Signals of a search process: one clean interrupt, children that die with their parent.

* :func:`interrupt_once` makes SIGINT and SIGTERM raise ``KeyboardInterrupt`` **once**: the
  handler does nothing on any later one, so a second Ctrl-C cannot hit the interrupt
  handling itself (e.g. between re-queueing a trial and telling it FAIL: a trial queued twice).
* :func:`die_with_parent` asks Linux (``prctl(PR_SET_PDEATHSIG, SIGTERM)``) to send SIGTERM to
  this worker process when its parent dies, however the parent dies (even SIGKILL); with
  :func:`interrupt_once` the worker then re-queues its trial and exits, instead of training on.
* :func:`stop_children` ends the local workers of an interrupted parent: SIGTERM, a grace period,
  then SIGKILL for any that did not exit (their trials are then recovered by pid on the next run).
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Sequence
from typing import Any

__all__ = ["die_with_parent", "interrupt_once", "stop_children"]

_PR_SET_PDEATHSIG = 1


def interrupt_once() -> None:
    """SIGINT and SIGTERM raise one ``KeyboardInterrupt``; later ones do nothing. (A Python no-op,
    not ``SIG_IGN``: a signal already pending when the handler changed would print "Signal 15
    ignored due to race condition" with a traceback.)"""
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if fired:
            return
        fired.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def die_with_parent(parent_pid: int) -> None:
    """SIGTERM to this process when the parent dies (Linux); exit now if it is already gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's stop_children is the fallback
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        raise KeyboardInterrupt


def stop_children(procs: Sequence[Any], grace_s: float = 30.0) -> None:
    """SIGTERM every live ``multiprocessing.Process``, wait ``grace_s``, then SIGKILL."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(grace_s)
        if p.is_alive():
            p.kill()
            p.join()
