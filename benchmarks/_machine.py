"""What the benchmarks print about the machine they ran on."""

from __future__ import annotations

import platform


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
