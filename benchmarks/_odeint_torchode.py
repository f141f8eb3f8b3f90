"""torchode as a second anchor: dopri5/tsit5 at equal accuracy, batched (per-sample steps).

torchode (Lienen & Günnemann 2022) steps every sample of the batch with its own step size and
controller; odeattn does the same with ``options={"per_sample": True}``, so the comparison is
like for like. Equal accuracy: the target is the worse of the two libraries' max errors (vs a
tight torchdiffeq dopri5 reference) at rtol 1e-5 / atol 1e-7; each library then runs at the
loosest tolerance (× 2^k, k ≤ 8, stopping at the first miss) that still meets it. Times are
medians (and minima) of interleaved repeats, eager (no ``torch.compile`` for either), forward under no_grad.
"""

from __future__ import annotations

import statistics

import torch
from _common import time_calls

BASE = {"rtol": 1e-5, "atol": 1e-7}
METHODS = {"dopri5": "Dopri5", "tsit5": "Tsit5"}


def _torchode_solve(f, y0: torch.Tensor, method: str, rtol: float, atol: float) -> torch.Tensor:
    import torchode as to

    shape = (-1, *[1] * (y0.dim() - 1))
    term = to.ODETerm(lambda t, y: f(t.reshape(shape), y.reshape(y0.shape)).flatten(1))
    step = getattr(to, METHODS[method])(term=term)
    ctrl = to.IntegralController(atol=atol, rtol=rtol, term=term)
    solver = to.AutoDiffAdjoint(step, ctrl)
    t_eval = torch.tensor([0.0, 1.0]).expand(y0.shape[0], 2)
    sol = solver.solve(to.InitialValueProblem(y0=y0.flatten(1), t_eval=t_eval))
    return sol.ys[:, -1].reshape(y0.shape)


def _odeattn_solve(f, y0: torch.Tensor, method: str, rtol: float, atol: float) -> torch.Tensor:
    from odeattn.solve import odeint

    def g(t, y):
        return f(t.reshape(-1, *[1] * (y.dim() - 1)) if t.dim() else t, y)

    opts = {"per_sample": True}
    return odeint(g, y0, [0.0, 1.0], method=method, rtol=rtol, atol=atol, options=opts)[-1]


SOLVE = {"odeattn": _odeattn_solve, "torchode": _torchode_solve}


def _nfe_err(lib: str, f, y0, method: str, kw: dict, ref) -> tuple[float, int]:
    calls = [0]

    def counted(t, y):
        calls[0] += 1
        return f(t, y)

    with torch.no_grad():
        out = SOLVE[lib](counted, y0, method, **kw)
    return float((out - ref).abs().max()), calls[0]


def _matched(f, y0, method: str, ref) -> dict:
    target = max(_nfe_err(lib, f, y0, method, BASE, ref)[0] for lib in SOLVE)
    out = {}
    for lib in SOLVE:
        out[lib] = dict(BASE)
        for k in range(1, 9):
            kw = {"rtol": BASE["rtol"] * 2**k, "atol": BASE["atol"] * 2**k}
            if _nfe_err(lib, f, y0, method, kw, ref)[0] > target:
                break
            out[lib] = kw
    return out


def torchode_case(name: str, f, y0: torch.Tensor, method: str, repeats: int) -> dict:
    """One JSON row: odeattn (per-sample) vs torchode at equal accuracy; ratio = odeattn/torchode."""
    import torchdiffeq
    import torchode

    with torch.no_grad():
        ref = torchdiffeq.odeint(f, y0, torch.tensor([0.0, 1.0]), rtol=1e-10, atol=1e-12)[-1]
    kws = _matched(f, y0, method, ref)
    times = {lib: [] for lib in SOLVE}
    with torch.no_grad():
        for lib in SOLVE:  # warm-up
            SOLVE[lib](f, y0, method, **kws[lib])
        for _ in range(repeats):
            for lib in SOLVE:
                times[lib] += time_calls(lambda lib=lib: SOLVE[lib](f, y0, method, **kws[lib]), 1)
    res = {}
    for lib in SOLVE:
        err, nfe = _nfe_err(lib, f, y0, method, kws[lib], ref)
        med, low = 1e3 * statistics.median(times[lib]), 1e3 * min(times[lib])
        res[lib] = {"median_ms": med, "min_ms": low, "err_vs_ref": err, "nfe": nfe, **kws[lib]}
    return {
        "bench": "odeint_torchode",
        "problem": name,
        "method": method,
        "compare": "equal_accuracy, per-sample steps, fwd",
        "torchode_version": getattr(torchode, "__version__", "1.0.1"),
        "ratio": res["odeattn"]["median_ms"] / res["torchode"]["median_ms"],
        "ratio_min": res["odeattn"]["min_ms"] / res["torchode"]["min_ms"],
        **res,
    }
