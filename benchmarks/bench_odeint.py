"""odeattn.odeint vs torchdiffeq.odeint: same problem, same method/tolerances, same machine.

Cases: {fixed rk38 (torchdiffeq "rk4" = 3/8 rule) on the same grid, adaptive dopri5 at equal
tolerance, adaptive dopri5 at equal accuracy} × {small conv ODE, small MLP ODE} × {forward,
forward+backward}. Prints one JSON object per case with the median time of each library
(interleaved repeats), the ratio odeattn / torchdiffeq (target ≤ 0.7), the error of both against
a tight reference, the tolerances used, NFE and accepted steps; then one object with the
graph-break count of a fixed-grid solve (torch._dynamo.explain, target 0).

Equal accuracy (``compare: equal_accuracy``): the target error is the worse of the two
libraries' errors at rtol 1e-5 / atol 1e-7; each library then runs at the loosest tolerance
(× 2^k, k ≤ 8, stopping at the first miss) that still meets it. On the fixed grid both libraries
make the same steps with the same arithmetic (equal errors are printed), so it is one row.

``--methods``: every torchdiffeq method on one problem at equal grid/tolerance
(``_odeint_methods``; ``--torchdiffeq-head DIR`` for the methods torchdiffeq 0.2.5 lacks).
``--torchode``: torchode as a second anchor, dopri5/tsit5 at equal accuracy with per-sample
steps (``_odeint_torchode``; ``pip install odeattn[bench]``).

Run: ``flock /tmp/odeattn-bench.lock python benchmarks/bench_odeint.py [--quick] [--methods]
[--torchode] [--only-extra]``
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
import torchdiffeq
from _common import cpu_name, time_calls
from torch import nn

from odeattn.solve import last_stats, odeint


class ConvField(nn.Module):
    """f(t, y) = conv(tanh(conv(y) + t)); y (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.c2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, t, y):
        return self.c2(torch.tanh(self.c1(y) + t))


class MLPField(nn.Module):
    """f(t, y) = W2 tanh(W1 y + t); y (B, D)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(dim, hidden)
        self.l2 = nn.Linear(hidden, dim)

    def forward(self, t, y):
        return self.l2(torch.tanh(self.l1(y) + t))


def problems():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    conv = ConvField(8)
    mlp = MLPField(32, 64)
    for m in (conv, mlp):
        for p in m.parameters():
            p.data.mul_(0.5)
    yield "conv(8x8x8, B=16)", conv, torch.randn(16, 8, 8, 8, generator=g)
    yield "mlp(32-64-32, B=64)", mlp, torch.randn(64, 32, generator=g)


def run(lib: str, f, y0, t, method: str, kw: dict, backward: bool, reference=None):
    """One solve (forward, or forward+backward) by ``lib``; ``reference`` is the torchdiffeq
    module to compare with (default: the installed one). Returns after a device sync."""
    solve = odeint if lib == "odeattn" else (reference or torchdiffeq).odeint
    m = method if lib == "odeattn" or method != "rk38" else "rk4"
    if backward:
        y = y0.clone().requires_grad_()
        out = solve(f, y, t, method=m, **kw)
        out[-1].pow(2).mean().backward()
        out = out.detach()
    else:
        with torch.no_grad():
            out = solve(f, y0, t, method=m, **kw)
    if out.is_cuda:
        torch.cuda.synchronize()
    return out


def _error(lib, f, y0, t, method, kw, ref, reference=None) -> tuple[float, int]:
    calls = [0]

    def counted(tt, y):
        calls[0] += 1
        return f(tt, y)

    out = run(lib, counted, y0, t, method, kw, False, reference)
    return float((out[-1] - ref).abs().max()), calls[0]


def matched_tolerances(f, y0, t, ref, base: dict) -> dict:
    """Per library, the loosest tolerance (base × 2^k, k = 0…8, stopping at the first miss) whose
    error is at most the worse of the two libraries' errors at the base tolerance: both then
    deliver (at least) the same accuracy, and each does the least work it needs for it."""
    target = max(_error(lib, f, y0, t, "dopri5", base, ref)[0] for lib in LIBS)
    out = {}
    for lib in LIBS:
        out[lib] = base
        for k in range(1, 9):
            kw = {"rtol": base["rtol"] * 2**k, "atol": base["atol"] * 2**k}
            if _error(lib, f, y0, t, "dopri5", kw, ref)[0] > target:
                break
            out[lib] = kw
    return out


LIBS = ("odeattn", "torchdiffeq")


def case(name, f, y0, method, backward, repeats, match_accuracy=False, reference=None):
    """One row: ``method`` in odeattn and in ``reference`` (default: the installed torchdiffeq)
    on the device of ``y0``; ``ratio`` = odeattn / reference of the median times."""
    t = torch.tensor([0.0, 1.0], device=y0.device)
    fixed = {"options": {"step_size": 1 / 32}}
    with torch.no_grad():
        ref = torchdiffeq.odeint(f, y0, t, method="dopri5", rtol=1e-10, atol=1e-12)[-1]
    base = fixed if method == "rk38" else {"rtol": 1e-5, "atol": 1e-7}
    kws = matched_tolerances(f, y0, t, ref, base) if match_accuracy else dict.fromkeys(LIBS, base)
    res = {}
    for lib in LIBS:
        run(lib, f, y0, t, method, kws[lib], backward, reference)  # warm-up
    times = {lib: [] for lib in LIBS}
    for _ in range(repeats):  # interleaved
        for lib in times:
            times[lib] += time_calls(
                lambda lib=lib: run(lib, f, y0, t, method, kws[lib], backward, reference), 1
            )
    for lib in LIBS:
        err, nfe = _error(lib, f, y0, t, method, kws[lib], ref, reference)
        res[lib] = {
            "median_ms": 1e3 * statistics.median(times[lib]),
            "err_vs_ref": err,
            "nfe": nfe,
            **kws[lib],
        }
        if lib == "odeattn":
            st = last_stats()
            res[lib].update(accepted=st.accepted, rejected=st.rejected)
    compare = (
        "equal_accuracy"
        if match_accuracy
        else ("same_grid" if method == "rk38" else "equal_tolerance")
    )
    return {
        "bench": "odeint",
        "problem": name,
        "method": method,
        "mode": "fwd+bwd" if backward else "fwd",
        "compare": compare,
        "ratio": res["odeattn"]["median_ms"] / res["torchdiffeq"]["median_ms"],
        **res,
    }


def overhead_only(f, y0, res: dict, repeats: int) -> dict:
    """Per-library solver time minus NFE bare f calls (fwd, no_grad): the part a solver owns."""
    t0 = torch.tensor(0.0)
    out = {}
    for lib in ("odeattn", "torchdiffeq"):
        nfe = res[lib]["nfe"]
        with torch.no_grad():
            f_ms = 1e3 * statistics.median(
                time_calls(lambda nfe=nfe: [f(t0, y0) for _ in range(nfe)], repeats)
            )
        out[lib] = {"nfe_f_ms": f_ms, "overhead_ms": res[lib]["median_ms"] - f_ms}
    out["ratio"] = out["odeattn"]["overhead_ms"] / out["torchdiffeq"]["overhead_ms"]
    return out


def graph_breaks() -> dict:
    import torch._dynamo as dynamo

    f = MLPField(8, 16)
    y0 = torch.randn(4, 8)

    def solve(y):
        return odeint(f, y, [0.0, 1.0], method="rk38", options={"step_size": 0.1})

    def solve_tensor_t(y, t):
        return odeint(f, y, t, method="rk38", options={"step_size": 0.1})

    e1 = dynamo.explain(solve)(y0)
    dynamo.reset()
    e2 = dynamo.explain(solve_tensor_t)(y0, torch.tensor([0.0, 1.0]))
    dynamo.reset()

    def solve_tensor_t_steps(y, t):
        return odeint(f, y, t, method="rk38", options={"steps": 10})

    e3 = dynamo.explain(solve_tensor_t_steps)(y0, torch.tensor([0.0, 1.0]))
    dynamo.reset()
    return {
        "bench": "graph_breaks",
        "case": "odeint rk38 fixed grid, 10 steps",
        "t_as_floats": e1.graph_break_count,
        "t_as_tensor": e2.graph_break_count,
        "t_as_tensor_steps_option": e3.graph_break_count,
        "t_as_tensor_reasons": sorted({str(b.reason)[:120] for b in e2.break_reasons}),
    }


def extra(args, repeats: int, meta: dict) -> None:
    """The ``--methods`` rows (one per torchdiffeq method) and the ``--torchode`` rows."""
    if args.methods:
        from _odeint_methods import all_methods

        torch.manual_seed(0)
        f = MLPField(32, 64)
        for p in f.parameters():
            p.data.mul_(0.5)
        y0 = torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
        for row in all_methods(f, y0, repeats, args.torchdiffeq_head):
            print(json.dumps({**row, "problem": "mlp(32-64-32, B=16)", **meta}), flush=True)
    if args.torchode:
        from _odeint_torchode import torchode_case

        for name, f, y0 in problems():
            for method in ("dopri5", "tsit5"):
                row = torchode_case(name, f, y0, method, repeats)
                print(json.dumps({**row, **meta}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--no-explain", action="store_true")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch intra-op threads (0 = torch's default); 1 on a loaded machine",
    )
    ap.add_argument(
        "--f-only",
        action="store_true",
        help="also time NFE bare f calls: overhead-only ratio (solver − NFE·f)",
    )
    ap.add_argument("--methods", action="store_true", help="every torchdiffeq method")
    ap.add_argument("--torchdiffeq-head", default=None, help="DIR holding torchdiffeq/ (HEAD)")
    ap.add_argument("--torchode", action="store_true", help="torchode anchor (dopri5/tsit5)")
    ap.add_argument("--repeats", type=int, default=0, help="override the repeat count")
    ap.add_argument("--only-extra", action="store_true", help="skip the rk38/dopri5 cases")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (5 if args.quick else 21)
    meta = {
        "machine": cpu_name(),
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "torchdiffeq_version": torchdiffeq.__version__,
    }
    extra(args, repeats, meta)
    for name, f, y0 in [] if args.only_extra else problems():
        for method, match in (("rk38", False), ("dopri5", False), ("dopri5", True)):
            for backward in (False, True):
                res = case(name, f, y0, method, backward, repeats, match)
                if args.f_only and not backward:
                    res["overhead_only"] = overhead_only(f, y0, res, repeats)
                print(json.dumps({**res, **meta}), flush=True)
    if not args.no_explain:
        print(json.dumps(graph_breaks()), flush=True)


if __name__ == "__main__":
    main()
