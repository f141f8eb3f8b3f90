"""Every torchdiffeq method, one problem, equal grid/tolerance: ``odeattn.torchdiffeq`` vs torchdiffeq.

The problem is the small MLP ODE of ``bench_odeint`` (32-64-32, B=16, t ∈ [0, 1]). Fixed-grid
methods take ``step_size`` 1/16 (16 steps), adaptive ones rtol 1e-5 / atol 1e-7, ``scipy_solver``
SciPy's RK45 at the same tolerances. Both libraries get the same call
(``odeint(f, y0, t, method=m, rtol, atol, options)``); each method runs against the installed
torchdiffeq when it has the method, else against a torchdiffeq HEAD checkout given by
``--torchdiffeq-head`` (loaded as a separate package, never part of the project), else the row
says the method is absent there. Per method: median time of each (interleaved repeats), the
ratio odeattn / torchdiffeq (target ≤ 1.0) of the medians and of the minima (the minimum is the
better estimate of a call's own cost on a shared, loaded machine: load bursts only add time),
NFE of both and the max difference of the solutions.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
from types import ModuleType

import torch
from _common import time_calls

FIXED = {"step_size": 1 / 16}
TOL = {"rtol": 1e-5, "atol": 1e-7}


def load_head(path: str | None) -> ModuleType | None:
    """torchdiffeq HEAD from ``path/torchdiffeq`` under the name ``torchdiffeq_head``."""
    if not path:
        return None
    init = f"{path.rstrip('/')}/torchdiffeq/__init__.py"
    spec = importlib.util.spec_from_file_location(
        "torchdiffeq_head", init, submodule_search_locations=[init.rsplit("/", 1)[0]]
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["torchdiffeq_head"] = mod
    spec.loader.exec_module(mod)
    return mod


def _solvers(lib: ModuleType) -> dict:
    impl = sys.modules[f"{lib.__name__}._impl.odeint"]
    return impl.SOLVERS


def _kwargs(lib: ModuleType, method: str) -> dict:
    solver = _solvers(lib)[method]
    if method == "scipy_solver":
        return {**TOL, "options": {"solver": "RK45"}}
    adaptive = "AdaptiveStepsize" in " ".join(c.__name__ for c in solver.__mro__)
    return dict(TOL) if adaptive else {**TOL, "options": dict(FIXED)}


def _counted(f):
    calls = [0]

    def g(t, y):
        calls[0] += 1
        return f(t, y)

    return g, calls


def one_method(ours: ModuleType, ref: ModuleType, method: str, f, y0, repeats: int) -> dict:
    """Time ``method`` in both libraries with the reference's kwargs; ratio = ours / reference."""
    t = torch.tensor([0.0, 1.0])
    kw = _kwargs(ref, method)
    libs = {"odeattn": ours, "torchdiffeq": ref}
    outs, nfe = {}, {}
    with torch.no_grad():
        for name, lib in libs.items():
            g, calls = _counted(f)
            outs[name] = lib.odeint(g, y0, t, method=method, **kw)[-1]
            nfe[name] = calls[0]
        times = {name: [] for name in libs}
        for _ in range(repeats):  # interleaved
            for name, lib in libs.items():
                times[name] += time_calls(
                    lambda lib=lib: lib.odeint(f, y0, t, method=method, **kw), 1
                )
    res = {
        name: {
            "median_ms": 1e3 * statistics.median(times[name]),
            "min_ms": 1e3 * min(times[name]),
            "nfe": nfe[name],
        }
        for name in libs
    }
    return {
        "bench": "odeint_methods",
        "method": method,
        "reference": f"{ref.__name__} {ref.__version__}",
        "kwargs": {k: v for k, v in kw.items()},
        "ratio": res["odeattn"]["median_ms"] / res["torchdiffeq"]["median_ms"],
        "ratio_min": res["odeattn"]["min_ms"] / res["torchdiffeq"]["min_ms"],
        "max_diff": float((outs["odeattn"] - outs["torchdiffeq"]).abs().max()),
        **res,
    }


def all_methods(f, y0, repeats: int, head_path: str | None):
    """One row per method of ``odeattn.torchdiffeq.SOLVERS`` (absent ones say so)."""
    import torchdiffeq

    import odeattn.torchdiffeq as ours

    head = load_head(head_path)
    for method in sorted(ours.SOLVERS):
        ref = next((lib for lib in (torchdiffeq, head) if lib and method in _solvers(lib)), None)
        if ref is None:
            yield {"bench": "odeint_methods", "method": method, "reference": "absent"}
            continue
        yield one_method(ours, ref, method, f, y0, repeats)
