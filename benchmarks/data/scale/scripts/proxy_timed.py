"""`python -m odeattn.proxies benchmark ...` unchanged, with the wall/CPU time of each
architecture's zero-cost scoring (_zero_cost) and of each training run (run_trial, which also
measures tns@init / tns@1 / flops) appended to $PROXY_TIMES as JSON lines (jobs=1: in-process)."""

import json
import os
import sys
import time

os.environ.setdefault("MPLBACKEND", "Agg")
import odeattn.experiments._bench as b
from odeattn.experiments import bench_main

log = open(os.environ["PROXY_TIMES"], "a", buffering=1)  # noqa: SIM115 (open for the run)


def timed(name, fn):
    def f(*a, **kw):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **kw)
        finally:
            log.write(
                json.dumps(
                    {
                        "what": name,
                        "t": time.time(),
                        "wall_s": time.perf_counter() - t0,
                        "cpu_s": time.process_time() - c0,
                    }
                )
                + "\n"
            )

    return f


b._zero_cost = timed("zero_cost", b._zero_cost)
b.run_trial = timed("train", b.run_trial)
b.evaluate = timed("architecture", b.evaluate)
sys.argv = ["odeattn.proxies", *sys.argv[1:]]
sys.exit(bench_main())
