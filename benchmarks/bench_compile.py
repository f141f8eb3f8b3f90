"""Benchmark: compiled residual steps vs hand-written PyTorch modules of the same math.

Forward + backward of one Euler / classic RK4 residual step with a conv vector field
f = BN → ReLU → Conv3x3 (pre-activation), batch 64, feature shapes 16×8×8 and 64×32×32. Both
modules share the same field; runs are interleaved; ``ratio`` is min(ours)/min(hand) (the
minimum is robust to bursts of load from other processes on a shared machine),
``ratio_median`` the same with medians.
Then ``torch._dynamo.explain`` graph-break counts of a compiled explicit step, of the solver's
stage kernel (dopri5 step) and of a fixed-grid ``odeattn.odeint`` solve.

    flock /tmp/odeattn-bench.lock python benchmarks/bench_compile.py [--reps 7] [--quick]

Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torch import nn

from odeattn.compile import Stepper, compile_step

TARGET = {"euler": 1.05, "rk4": 1.10}


class HandEuler(nn.Module):
    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class HandRK4(nn.Module):
    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k1 = self.f(x)
        k2 = self.f(x + 0.5 * k1)
        k3 = self.f(x + 0.5 * k2)
        k4 = self.f(x + k3)
        return x + (k1 + 2 * k2 + 2 * k3 + k4) / 6


def _field(c: int) -> nn.Module:
    return nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1, bias=False))


def _once(m: nn.Module, x: torch.Tensor) -> float:
    for p in m.parameters():
        p.grad = None
    t0 = time.perf_counter()
    m(x).sum().backward()
    return time.perf_counter() - t0


def _machine() -> dict:
    return {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def bench_steps(reps: int, shapes: list[tuple[int, int, int]]) -> None:
    for method, hand_cls in (("euler", HandEuler), ("rk4", HandRK4)):
        for c, hh, ww in shapes:
            torch.manual_seed(0)
            f = _field(c)
            ours, hand = compile_step(method, f), hand_cls(f)
            x = torch.randn(64, c, hh, ww)
            with torch.no_grad():
                assert torch.allclose(ours(x), hand(x), rtol=1e-5, atol=1e-5)
            _once(ours, x), _once(hand, x)  # warm-up
            t_o, t_h = [], []
            for r in range(reps):
                pair = [(ours, t_o), (hand, t_h)] if r % 2 else [(hand, t_h), (ours, t_o)]
                for m, acc in pair:
                    acc.append(_once(m, x))
            mo, mh = statistics.median(t_o), statistics.median(t_h)
            print(
                json.dumps(
                    {
                        "case": "compile_step_vs_hand",
                        "method": method,
                        "shape": [64, c, hh, ww],
                        "ours_min_ms": round(min(t_o) * 1e3, 3),
                        "hand_min_ms": round(min(t_h) * 1e3, 3),
                        "ratio": round(min(t_o) / min(t_h), 4),
                        "ratio_median": round(mo / mh, 4),
                        "target": TARGET[method],
                        "reps": reps,
                        **_machine(),
                    }
                )
            )


def bench_graph_breaks() -> None:
    import torch._dynamo as dynamo

    conv = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Tanh())
    gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 4, 1), nn.Sigmoid())
    blk = compile_step("rk4", conv, step=lambda x_t, phi: gate(x_t))
    x = torch.randn(2, 4, 8, 8)
    cases = {"compile_step rk4 + adaptor": lambda: dynamo.explain(blk)(x)}
    st = Stepper("dopri5")

    def one_step(t, y, h):
        return st.step(lambda s, z: torch.sin(s) * conv(z), t, y, h)

    cases["Stepper dopri5 step"] = lambda: dynamo.explain(one_step)(
        torch.tensor(0.0), x, torch.tensor(0.1)
    )
    try:
        from odeattn import solve
    except ImportError:
        solve = None
    if solve is not None:

        def fixed(y):
            return solve.odeint(
                lambda s, z: conv(z), y, [0.0, 0.5, 1.0], method="rk4", options={"step_size": 0.25}
            )

        cases["odeint rk4 fixed grid (2 outputs, 4 steps)"] = lambda: dynamo.explain(fixed)(x)
    for name, run in cases.items():
        try:
            ex = run()
            out = {
                "graphs": ex.graph_count,
                "graph_breaks": ex.graph_break_count,
                "reasons": sorted({str(r.reason)[:120] for r in ex.break_reasons}),
            }
        except Exception as err:  # report, do not hide
            out = {"error": f"{type(err).__name__}: {err}"[:300]}
        dynamo.reset()
        print(json.dumps({"case": "graph_breaks", "what": name, "target": 0, **out, **_machine()}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--quick", action="store_true", help="only the small shape, 3 reps")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch intra-op threads (0 = torch's default); 1 on a loaded machine",
    )
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    shapes = [(16, 8, 8)] if a.quick else [(16, 8, 8), (64, 32, 32)]
    bench_steps(3 if a.quick else a.reps, shapes)
    bench_graph_breaks()


if __name__ == "__main__":
    main()
