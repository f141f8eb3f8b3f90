"""Running the GPU check's parts under time limits: the CUDA tests, then the steps in workers.

``run_tests`` runs ``pytest -m cuda tests/test_cuda.py`` in a process of its own and reads its
JUnit XML. ``run_steps`` starts a worker (``gpu_check.py --worker PLAN``) on the steps still to
do and follows its event lines; a step over its limit (``LIMIT_S``) or past the run's deadline is
killed with the worker's whole process group and the next worker takes the rest. Processes start
in sessions of their own, so nothing they spawn (inductor's compile workers) outlives them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LIMIT_S = {  # per step kind (name up to the first "_"): GPU check / --cpu-smoke
    "tests": (150, 90),
    "env": (60, 30),
    "train": (60, 30),
    "nsi": (60, 30),
    "odeint": (90, 30),
    "epoch": (150, 30),
    "compile": (240, 60),
}
MIN_START_S = 15  # a step is not started with less time than this left before the deadline
NEEDS = {"odeint": ("torchdiffeq",), "tests": ("pytest",)}  # beyond torch, numpy, networkx
CORE = ("torch", "numpy", "networkx")
IDLE_S = 120.0  # a worker that reports nothing for this long between steps is killed


def limit_of(step: str, smoke: bool) -> float:
    return LIMIT_S[step.split("_")[0]][int(smoke)]


def missing_modules() -> dict[str, str]:
    """Modules the check needs that this Python cannot import, with what each is for."""
    why = {m: "everything" for m in CORE} | {"torchdiffeq": "odeint", "pytest": "tests"}
    return {m: why[m] for m in why if importlib.util.find_spec(m) is None}


def _env(smoke: bool) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    if smoke:  # on the CPU, whatever the machine has
        env |= {"OMP_NUM_THREADS": "1", "ODEATTN_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return env


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (it was started in a session of its own, so this
    takes inductor's compile workers and pytest's children along) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_tests(smoke: bool, deadline: float, tmp: Path) -> dict:
    """``pytest -m cuda tests/test_cuda.py``: counts from its JUnit XML, failures by name."""
    limit = min(limit_of("tests", smoke), deadline - time.monotonic())
    junit = tmp / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "tests/test_cuda.py", "-q"]
    cmd += ["-p", "no:cacheprovider", f"--junitxml={junit}"]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=_env(smoke),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        log, _ = proc.communicate(timeout=max(limit, 1))
    except subprocess.TimeoutExpired:
        _kill(proc)
        return {"status": "timed_out", "seconds": time.monotonic() - t0, "limit_s": limit}
    except BaseException:  # Ctrl-C: its own session does not get the SIGINT, so take it along
        _kill(proc)
        raise
    out = {"status": "ok", "seconds": time.monotonic() - t0, "limit_s": limit}
    out |= {"exit_code": proc.returncode, **_junit_counts(junit)}
    if out["failed"] or out["errors"] or proc.returncode not in (0, 5):
        out["status"], out["log_tail"] = "failed", log[-3000:]
    elif out["skipped"] and not smoke:  # on the GPU machine every test must run
        out["status"], out["log_tail"] = "failed", log[-3000:]
        out["reason"] = f"{out['skipped']} CUDA test(s) skipped on the GPU machine"
    return out


def _junit_counts(path: Path) -> dict:
    if not path.is_file():
        return {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": []}
    suite = ET.parse(path).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    bad = [
        {"test": case.get("name"), "message": (el.get("message") or "")[:300]}
        for case in suite.iter("testcase")
        for el in case
        if el.tag in ("failure", "error")
    ]
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    return {
        "passed": passed,
        "failed": n["failures"],
        "errors": n["errors"],
        "skipped": n["skipped"],
        "failures": bad,
    }


def _events(path: Path, seen: int) -> list[dict]:
    """The event lines of the worker's file after the first ``seen`` (complete lines only)."""
    if not path.is_file():
        return []
    lines = path.read_text().split("\n")[:-1]
    return [json.loads(line) for line in lines[seen:]]


def _start_worker(todo: list[str], mode: str, deadline: float, tmp: Path, k: int, log):
    """Worker ``k`` on the steps ``todo``; it skips a step it would start too close to the end."""
    plan = {
        "mode": mode,
        "steps": todo,
        "events": str(tmp / f"events{k}.jsonl"),
        "deadline_unix": time.time() + deadline - time.monotonic() - MIN_START_S,
        "min_start_s": MIN_START_S,
        "limits": {s: limit_of(s, mode == "cpu-smoke") for s in todo},
    }
    (tmp / f"plan{k}.json").write_text(json.dumps(plan))
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks/gpu_check.py"),
        "--worker",
        str(tmp / f"plan{k}.json"),
    ]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=_env(mode == "cpu-smoke"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def run_steps(todo: list[str], mode: str, deadline: float, tmp: Path) -> dict[str, dict]:
    """Run the steps in workers, a fresh one after each kill; {step: status, seconds, result}."""
    done: dict[str, dict] = {}
    for k in range(len(todo)):
        todo = [s for s in todo if s not in done]
        if not todo or deadline - time.monotonic() < MIN_START_S:
            break
        before = len(done)
        with open(tmp / f"worker{k}.log", "w") as log:
            proc = _start_worker(todo, mode, deadline, tmp, k, log)
            try:
                current = _supervise(proc, tmp / f"events{k}.jsonl", done, mode, deadline)
            except BaseException:  # Ctrl-C: the worker's session did not get it; end it too
                _kill(proc)
                raise
        tail = (tmp / f"worker{k}.log").read_text()[-1500:]
        if current is not None and current not in done:  # the worker died inside a step
            done[current] = {"status": "crashed", "reason": f"exit {proc.returncode}: {tail}"}
        elif len(done) == before and proc.returncode:  # it died before any step: give up
            for s in todo:
                done[s] = {"status": "crashed", "reason": f"worker exit {proc.returncode}: {tail}"}
    for s in todo:
        done.setdefault(s, {"status": "skipped", "reason": "deadline"})
    return done


def _supervise(proc, events: Path, done: dict, mode: str, deadline: float) -> str | None:
    """Follow one worker's events until it exits or is killed; returns the step it was in.
    Between steps (and while it starts) the worker gets ``IDLE_S`` to report again."""
    current, since, seen = None, time.monotonic(), 0
    while True:
        exited = proc.poll() is not None
        for ev in _events(events, seen):
            seen, since = seen + 1, time.monotonic()
            if ev["event"] == "start":
                current = ev["step"]
            else:
                done[ev["step"]] = {k: v for k, v in ev.items() if k not in ("event", "step")}
                current = None
        if exited:
            return current
        now = time.monotonic()
        limit = limit_of(current, mode == "cpu-smoke") if current else IDLE_S
        if now - since > limit or now > deadline:
            _kill(proc)
            if current is not None:
                why = "deadline" if now > deadline else f"over its {limit:g} s limit"
                done[current] = {"status": "timed_out", "seconds": now - since, "reason": why}
            return None
        time.sleep(0.2)


def source_id() -> dict:
    """The commit when this is a git checkout, and a hash of the code that ran either way."""
    files = sorted(
        [
            *ROOT.glob("odeattn/**/*.py"),
            *ROOT.glob("odeattn/**/*.c"),
            *ROOT.glob("benchmarks/*.py"),
            ROOT / "tests/test_cuda.py",
        ]
    )
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"commit": commit, "tree_sha256": h.hexdigest()}
