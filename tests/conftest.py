"""Shared test settings: headless plots, quiet third-party loggers, deterministic seeds."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
