"""Stiffness benchmarks: recording overhead on a ResNet-164 forward, exact TNS vs grid TNS.

    flock /tmp/odeattn-bench.lock python benchmarks/bench_stiffness.py [--reps 15] [--skip-record]
        [--threads N]

Prints one JSON object per case:
- ``record_overhead``: ResNet-164 (CIFAR, 10 classes) forward on CPU, batch 32, channels_last,
  eval mode without grad, with and without ``odeattn.stiffness.record``: same model and input
  (``bench_record`` also runs on CUDA, batch 128, under bf16 autocast, for ``gpu_check.py``),
  warm-up, paired rounds in alternating order; ``ratio`` = min recorded / min plain (min-of-N),
  ``ratio_paired_median`` / ``_iqr`` = the per-round ratios (target ≤ 1.03).
- ``record_overhead_in_situ``: the same cost timed where it is paid, the residual adds of real
  forwards (plain ``x + Φ`` vs the recorder's fused add), min over forwards; steadier than whole
  forwards on a shared VM, whose convolutions absorb most of the CPU steal.
- ``record_overhead_in_situ`` with ``model: resnet164+se`` (channel step Δt, informational): the
  same for ``addcmul(x, Δt, Φ)``; ``ratio_torch`` with the kernels off (torch reductions).
- ``tns_exact``: ``tns`` on N = 10,000 × L = 54 (3 stages × 18 blocks, log-normal NSI); target
  ≤ 50 ms.
- ``tns_grid``: the midpoint grid integral of δ at the coarsest resolution (from a doubling
  ladder) whose error against the exact value is below 1 %; ratio = grid time / exact time.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _common import cpu_name

from odeattn.stiffness import record, tns, tns_grid


def _median_time(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _paired(plain, recorded, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of ``reps`` paired calls of each, after a warm-up of both, in alternating order
    (ABBA) against drifting load."""
    p, r = [], []
    plain(), recorded(), plain()  # warm-up: allocator, oneDNN primitives / cudnn, both paths
    for i in range(reps):
        if i % 2 == 0:
            p.append(plain()), r.append(recorded())
        else:
            r.append(recorded()), p.append(plain())
    return np.array(p), np.array(r)


def _forward_timers(model, x):
    """Two callables timing one forward of ``model`` on ``x``, without and inside ``record``;
    on CUDA each is timed to a device sync (the recorder keeps its norms on the device)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def plain() -> float:
        sync()
        t0 = time.perf_counter()
        model(x)
        sync()
        return time.perf_counter() - t0

    def recorded() -> float:
        with record(model) as rec:
            t = plain()
        assert rec.nsi().shape[0] == x.shape[0]
        return t

    return plain, recorded


def bench_record(
    reps: int,
    *,
    device: str = "cpu",
    batch: int = 32,
    amp: bool = False,
    model_kw: dict | None = None,
) -> dict:
    """Eval forward of ResNet-164 (``model_kw`` overrides: adaptor, blocks, ...) with and without
    ``record``, channels_last, under bf16 autocast when ``amp``, on ``device``."""
    from odeattn.models import create_model

    torch.manual_seed(0)
    dev = torch.device(device)
    model = create_model("resnet164", num_classes=10, **(model_kw or {})).eval()
    model = model.to(dev, memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 32, 32, device=dev).contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(dev.type, torch.bfloat16, enabled=amp)
    plain, recorded = _forward_timers(model, x)
    with torch.no_grad(), autocast:
        pa, ra = _paired(plain, recorded, reps)
    return {
        "case": "record_overhead",
        "model": "resnet164",
        "device": dev.type,
        "bf16": amp,
        "batch": batch,
        "channels_last": True,
        "plain_s": float(pa.min()),
        "recorded_s": float(ra.min()),
        "ratio": float(ra.min() / pa.min()),  # min-of-N: least disturbed by other load
        "ratio_paired_median": float(np.median(ra / pa)),
        "ratio_paired_iqr": [float(q) for q in np.percentile(ra / pa, [25, 75])],
        "target_ratio": 1.03,
        "reps": reps,
    }


class _TimedResidual:
    """Times every residual combination of a forward in place: ``x + Φ`` / ``addcmul(x, Δt, Φ)``
    alone (no recorder), or the recorder's ``add`` / ``addcmul`` (fused with the norms)."""

    def __init__(self, recorder=None) -> None:
        self.recorder, self.seconds, self.calls = recorder, 0.0, 0

    def add(self, block, x_t, phi):
        t0 = time.perf_counter()
        y = x_t + phi if self.recorder is None else self.recorder.add(block, x_t, phi)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return y

    def addcmul(self, block, x_t, dt, phi):
        t0 = time.perf_counter()
        if self.recorder is None:
            y = torch.addcmul(x_t, dt, phi)
        else:
            y = self.recorder.addcmul(block, x_t, dt, phi)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return y

    def emit(self, block, x_t, y, phi, dt):
        raise AssertionError("every ResNet-164 block should call add() or addcmul()")


def bench_record_in_situ(reps: int, adaptor: str | None = None) -> dict:
    """Recording cost where it is paid: the residual combinations of real forwards, in place.

    Forwards alternate between blocks whose ``x + Φ`` (or ``x + Δt ⊙ Φ`` with an adaptor) is
    plain torch and blocks whose combination is the recorder's (fused with the norms); only
    those are timed (≈ 8–12 % of a forward), so CPU steal on the convolutions does not enter.
    ``extra_ms`` = min over forwards of the recorded total − min of the plain total; ``ratio``
    = 1 + extra / (min plain forward). With an adaptor, ``ratio_torch`` is the same with the
    kernels switched off (torch reductions).
    """
    from odeattn.compile._record import Recordable
    from odeattn.models import create_model
    from odeattn.stiffness import _kernels
    from odeattn.stiffness._recorder import Recorder

    torch.manual_seed(0)
    kw = {} if adaptor is None else {"adaptor": adaptor}
    model = create_model("resnet164", num_classes=10, **kw).eval()
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(32, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    blocks = [m for m in model.modules() if isinstance(m, Recordable)]
    lib = _kernels.load()
    kinds = ("plain", "recorded") + (("torch",) if adaptor else ())
    best = dict.fromkeys((*kinds, "forward"), np.inf)
    with torch.no_grad():
        for r in range(reps + 1):  # round 0 warms all paths up and is not counted
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                _kernels._lib = None if kind == "torch" else lib
                timer = _TimedResidual(None if kind == "plain" else Recorder())
                for m in blocks:
                    m._recorder = timer
                t0 = time.perf_counter()
                model(x)
                wall = time.perf_counter() - t0
                assert timer.calls == len(blocks)
                if r:
                    best[kind] = min(best[kind], timer.seconds)
                    if kind == "plain":
                        best["forward"] = min(best["forward"], wall - timer.seconds)
    _kernels._lib = lib
    for m in blocks:
        del m._recorder
    plain_forward = best["forward"] + best["plain"]
    out = {
        "case": "record_overhead_in_situ",
        "model": "resnet164" + (f"+{adaptor}" if adaptor else ""),
        "batch": 32,
        "blocks": len(blocks),
        "kernel_built": lib is not None,
        "plain_ms": 1e3 * best["plain"],
        "recorded_ms": 1e3 * best["recorded"],
        "extra_ms": 1e3 * (best["recorded"] - best["plain"]),
        "plain_forward_s": plain_forward,
        "ratio": 1 + (best["recorded"] - best["plain"]) / plain_forward,
        "reps": reps,
    }
    if adaptor:
        out["ratio_torch"] = 1 + (best["torch"] - best["plain"]) / plain_forward
    else:
        out["target_ratio"] = 1.03
    return out


def bench_tns(reps: int) -> list[dict]:
    rng = np.random.default_rng(0)
    nsi = rng.lognormal(0.0, 0.7, size=(10_000, 54))
    stage = np.repeat([0, 1, 2], 18)
    exact = tns(nsi, stage)
    t_exact = _median_time(lambda: tns(nsi, stage), reps)
    out = [
        {
            "case": "tns_exact",
            "N": 10_000,
            "L": 54,
            "time_ms": 1e3 * t_exact,
            "target_ms": 50.0,
            "tns": exact,
        }
    ]
    for res in (25, 50, 100, 200, 400, 800, 1600):
        err = abs(tns_grid(nsi, stage, resolution=res) - exact) / exact
        if err < 0.01:
            t_grid = _median_time(
                lambda r=res: tns_grid(nsi, stage, resolution=r), max(3, reps // 5)
            )
            out.append(
                {
                    "case": "tns_grid",
                    "resolution": res,
                    "rel_error": err,
                    "time_ms": 1e3 * t_grid,
                    "ratio_vs_exact": t_grid / t_exact,
                }
            )
            break
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--skip-record", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    machine = {
        "machine": cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    cases = bench_tns(args.reps)
    if not args.skip_record:
        cases.append(bench_record(args.reps))
        cases.append(bench_record_in_situ(args.reps))
        cases.append(bench_record_in_situ(max(5, args.reps // 2), "se"))
    for case in cases:
        print(json.dumps({**case, **machine}))


if __name__ == "__main__":
    main()
