"""``python -m odeattn.proxies benchmark --space … --n N --epochs E --seeds S``: the proxy benchmark.

The proxies themselves are a leaf (they never train); the benchmark trains, so it lives in
:mod:`odeattn.experiments` above ``search`` and this entry point only hands over to it (the one
upward import allowed by ``ignore_imports`` in pyproject.toml).
"""

from __future__ import annotations

import os
import sys

from odeattn.experiments import bench_main

if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(bench_main())
