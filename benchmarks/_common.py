"""Helpers shared by the benchmark scripts: the machine they ran on, timing a call."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``) and architecture, e.g. ``Intel(R) Xeon(R) … (x86_64)``."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_calls(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` consecutive calls of ``fn``."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out
