"""Issue 21 §1: a claim re-run is the same bit for bit — alone, in parallel, and under CPU load.

Every claim runs at ``--quick`` size twice, as a user would run it: once alone with ``--jobs 1``,
once with ``--jobs 2`` while two busy-loop processes load both cores. Every stored result file
(each trained network's JSON, each claim's ``result.json``, the benchmark's summary and CSVs)
must be equal, number for number, up to the provenance's date and command. A torch thread count
that followed the load, or a benchmark sample that depended on the order runs finish in, fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from odeattn.experiments._provenance import stable

ROOT = Path(__file__).resolve().parents[1]


def _run_all(out: Path, jobs: int) -> None:
    cmd = [sys.executable, "-m", "odeattn.experiments", "run", "all", "--quick"]
    cmd += ["--jobs", str(jobs), "--out", str(out)]
    env = os.environ | {"MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stderr[-2000:]


def _content(path: Path) -> object:
    """A result file with the volatile provenance fields (date, command) left out."""
    text = path.read_text()
    if path.suffix == ".json":
        return stable(json.loads(text))
    head, _, body = text.partition("\n")  # a CSV: "# provenance: {…}" first
    assert head.startswith("# provenance: ")
    return stable({"provenance": json.loads(head.removeprefix("# provenance: "))}), body


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.suffix in (".json", ".csv"))


@pytest.mark.slow
def test_every_quick_claim_is_bit_identical_alone_in_parallel_and_under_load(tmp_path):
    alone, loaded = tmp_path / "alone", tmp_path / "loaded"
    _run_all(alone, jobs=1)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        _run_all(loaded, jobs=2)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    files = _files(alone)
    assert files == _files(loaded)
    assert sum(f.parts[0] == "runs" for f in files) >= 50  # every trained network compared
    assert {f.parts[0] for f in files if f.name == "result.json"} >= {"attention_tns", "lth4sa"}
    for f in files:
        assert _content(alone / f) == _content(loaded / f), f
    prov = json.loads((loaded / "lth4sa" / "result.json").read_text())["runs_provenance"]
    assert [p["threads"] for p in prov] == [1]
