"""The scale benchmark's fixture: a study whose trials return at once, and an instrumented worker.

Not a shipped study. The study is the embedded lth4sa (digits_resnet, 3 objectives: validation
accuracy max, TNS max, attention blocks min; the constraint ``val_accuracy >= 0.9``) with 3
epochs, the ``dominated`` pruning rule (k = 3, decided at epoch 2), no noise ceiling, and a space
of 9 placement bits and a stepped learning rate (512 · 60 configurations, so samplers propose
configurations again and the duplicate lookup is exercised).

The objective replaces ``odeattn.search.trial._replicates.run_trial`` (the seam
``train_replicates`` calls; as ``benchmarks/bench_search.py`` does): it reports 3 epochs with the
per-epoch keys the real trial reports (accuracy, losses, ``tns@e``, the static ``params`` /
``flops`` / ``attention_blocks``), stops when the pruning rule says so, writes the trial's user
attributes through ``odeattn.search.trial.record_trial`` (``--artifacts``: also its artifacts and
note, as a real trial does) and returns values that are a deterministic function of the
configuration and the seed. Everything else is odeattn's real worker loop.

Timing (one JSON line per trial, per worker): the wall and CPU time of one turn of the worker loop
(from the end of the previous trial: the budget check, ask, sampling, the duplicate lookup, the
trial, tell) and the time spent inside the sampler's methods (``before_trial``,
``infer_relative_search_space``, ``sample_relative``, ``sample_independent``, ``after_trial``;
outermost calls only), so ``odeattn = wall − sampler``.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import yaml

EPOCHS = 3
SPACE = {
    "description": "scale benchmark: 9 placement bits and a stepped learning rate",
    "params": {
        "placement": {"type": "placement", "mode": "bits"},
        "lr": {"type": "float", "low": 0.005, "high": 0.3, "step": 0.005, "target": "train.lr"},
    },
}


def write_study(
    root: Path,
    base: Path,
    *,
    n_trials: int,
    sampler: str,
    replicates: int,
    history: int | None = None,
    name: str = "scale",
) -> Path:
    """The fixture study (from ``base``, studies/lth4sa.yaml) under ``root``; its path."""
    d = yaml.safe_load(base.read_text())
    (root / "space.yaml").write_text(yaml.safe_dump(SPACE))
    d.update(
        name=name,
        search_space=str(root / "space.yaml"),
        replicates=replicates,
        noise={"trials": 0},
        measure={"samples": 64, "batch": 32},
        budget={"n_trials": n_trials},
        sampler={"name": sampler, "seed": 0} | ({"history": history} if history else {}),
        pruning={"rule": "dominated", "k": 3, "warmup_epochs": 1, "min_trials": 4},
        runs_dir=str(root / "runs"),
    )
    d["train"] = {**d["train"], "epochs": EPOCHS}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _values(params: dict[str, Any], seed: int) -> tuple[float, float, int]:
    """(final accuracy, TNS, attention blocks) of a configuration: deterministic, seed-noisy."""
    bits = [int(v) for k, v in sorted(params.items()) if k.startswith("placement")]
    blocks = sum(bits)
    lr = float(params.get("lr", 0.05))
    acc = 0.97 - 0.04 * math.log(lr / 0.06) ** 2 - 0.004 * abs(blocks - 3)
    acc += 0.002 * math.sin(seed * 12.9898 + lr * 78.233)  # seed noise
    tns = 1.0 + 0.1 * sum(b * (i + 1) for i, b in enumerate(bits)) / 45 + 0.05 * lr
    return acc, tns, blocks


def _summary(tns: float) -> dict[str, Any]:
    return {"tns": tns, "nsi_per_block": [tns] * 6, "nsi_kind": "relative"}


def make_trial_fn(artifacts: bool) -> Any:
    """The patched ``run_trial`` (see the module docstring)."""
    from odeattn.search.trial import record_trial

    def run_trial(study, params, report, *, trial=None, space=None, screen=None, seed=None):
        acc, tns, blocks = _values(params, int(seed or 0))
        static = {"params": 1.0e5 + 1e3 * blocks, "flops": 2.0e7, "attention_blocks": blocks}
        history: dict[str, list[float]] = {}
        epochs_run = 0
        for e in range(1, EPOCHS + 1):
            epochs_run = e
            a = acc * (1 - 0.5**e) / (1 - 0.5**EPOCHS)
            m = {"val_accuracy": a, "val_loss": 1 - a, "train_loss": 1 - a, f"tns@{e}": tns * e / 3}
            for k, v in m.items():
                history.setdefault(k, []).append(v)
            if report is not None and report(e, {**m, **static}):
                break
        out = {"val_accuracy": a, "val_loss": 1 - a, "tns": tns, "tns_se": 0.01, "tns@init": 1.0}
        out |= static | {"epochs_run": float(epochs_run), "screened_out": 0.0, "seconds": 0.0}
        out |= {"seed": float(seed or 0), "threads": 1.0, "eval_samples": 64.0}
        if trial is not None:
            bits = "".join(str(int(v)) for k, v in sorted(params.items()) if k != "lr")
            arch = {"name": "digits_resnet", "placement": bits, "adaptor": "se"}
            summaries = {"init": _summary(1.0), "end": _summary(tns)}
            record_trial(study, trial, None, arch, out, summaries, history, {}, artifacts=artifacts)
        return out

    return run_trial


class _Clock:
    """Wall and CPU seconds spent inside the sampler's methods (outermost calls only)."""

    def __init__(self) -> None:
        self.total, self.cpu, self.depth = 0.0, 0.0, 0

    def wrap(self, fn: Any) -> Any:
        def timed(*a: Any, **kw: Any) -> Any:
            self.depth += 1
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                self.depth -= 1
                if self.depth == 0:
                    self.total += time.perf_counter() - t0
                    self.cpu += time.process_time() - c0

        return timed


_METHODS = (
    "before_trial",
    "infer_relative_search_space",
    "sample_relative",
    "sample_independent",
    "after_trial",
)


def _instrument(w: Any, clock: _Clock, log: Any) -> None:
    """Patch the worker module ``w``: a timed sampler and one JSON line per loop turn."""
    make = w.make_sampler
    numbers: list[int] = []

    def make_sampler(*a: Any, **kw: Any) -> Any:
        sampler = make(*a, **kw)
        for name in _METHODS:
            setattr(sampler, name, clock.wrap(getattr(sampler, name)))
        before = sampler.before_trial
        sampler.before_trial = lambda study, t: (numbers.append(t.number), before(study, t))[1]
        return sampler

    one = w._one_trial
    last = {"wall": None, "cpu": None}

    def one_trial(*a: Any, **kw: Any) -> bool:
        if last["wall"] is None:
            last["wall"], last["cpu"] = time.perf_counter(), time.process_time()
        s0, c0 = clock.total, clock.cpu
        ran = one(*a, **kw)
        wall, cpu = time.perf_counter(), time.process_time()
        rec = {
            "n": numbers[-1] if numbers else -1,
            "wall_ms": 1e3 * (wall - last["wall"]),
            "cpu_ms": 1e3 * (cpu - last["cpu"]),
            "sampler_ms": 1e3 * (clock.total - s0),
            "sampler_cpu_ms": 1e3 * (clock.cpu - c0),
            "surplus": not ran,
        }
        log.write(json.dumps(rec) + "\n")
        last["wall"], last["cpu"] = wall, cpu
        return ran

    w.make_sampler, w._one_trial = make_sampler, one_trial


def worker(study_file: str, url: str, index: int, out: str, artifacts: bool) -> None:
    """One worker process: odeattn's ``worker_loop`` with the fixture objective, timed."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    from odeattn.search.backends.optuna import _worker as w
    from odeattn.search.trial import _replicates
    from odeattn.study import load_study

    _replicates.run_trial = make_trial_fn(artifacts)
    with open(out, "w", buffering=1) as log:
        _instrument(w, _Clock(), log)
        w.worker_loop(load_study(study_file), url, worker=index, threads=1)


#: Where a worker's time goes: RDBStorage methods (each one transaction), by what they do, and
#: odeattn's one-transaction writes of several user attributes or params (``rdb_set_*``).
_PROFILE = {
    "write_user_attr": ("set_trial_user_attr",),
    "write_user_attrs": ("rdb_set_user_attrs",),
    "write_param": ("set_trial_param", "_set_trial_param"),
    "write_params": ("rdb_set_trial_params",),
    "write_system_attr": ("set_trial_system_attr",),
    "create_trial": ("create_new_trial", "_create_new_trial"),
    "tell_state": ("set_trial_state_values",),
    "heartbeat": ("record_heartbeat",),
    "read_trials": ("get_all_trials", "_get_trials"),
    "read_one_trial": ("get_trial",),
}


def profile(study_file: str, url: str, out: str, pstats_file: Any = None) -> dict[str, Any]:
    """One in-process worker under cProfile: seconds and calls per RDBStorage operation (and
    the raw statistics in ``pstats_file``, if given)."""
    import cProfile
    import pstats

    pr = cProfile.Profile()
    t0, c0 = time.perf_counter(), time.process_time()
    pr.enable()
    worker(study_file, url, 0, out, False)
    pr.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if pstats_file is not None:
        pr.dump_stats(str(pstats_file))
    got: dict[str, Any] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
    stats = pstats.Stats(pr).stats  # type: ignore[attr-defined]
    top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:15]  # by own time
    got["top_own_time"] = [
        {"function": f"{Path(f).name}:{line}({name})", "calls": v[1], "s": round(v[2], 3)}
        for (f, line, name), v in top
    ]
    for (file, _, name), (_, calls, _, cum, _) in stats.items():
        if not file.endswith(("_rdb/storage.py", "_optuna_private/_writes.py")):
            continue
        for key, names in _PROFILE.items():
            if name in names:
                old = got.get(key, {"calls": 0, "s": 0.0})  # public and _private: the larger
                if cum > old["s"]:
                    got[key] = {"calls": calls, "s": round(cum, 3)}
    return got
