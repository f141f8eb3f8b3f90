"""Shared test settings: headless plots, quiet third-party loggers, deterministic seeds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


TINY_SPACE = """
description: tiny test space
params:
  blocks: {type: per_stage, low: 2, high: 3}
  adaptor: {type: categorical, choices: [none, se]}
"""


@pytest.fixture
def tiny_space(tmp_path: Path) -> Path:
    """A two-parameter search space (blocks per stage 2–3, adaptor none/SE) as ``tmp_path/tiny.yaml``."""
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    return space
