"""Cost of each step-size adaptor relative to the plain network (DIA paper Sec. 7.3.1 reports
DIA-LSTM ≈ 12 % slower inference on ResNet-164 and its light version ≈ 1 %).

For every preset in ``odeattn.adaptors.ADAPTORS`` a model ``create_model(MODEL, adaptor=name)`` is
built; training steps (forward + backward) and inference passes (eval, no_grad) are timed in
interleaved rounds (one pass of every network per round, so machine drift hits all alike), and
the minimum per network (contention on a shared machine only ever adds time, so the minimum is the
most repeatable statistic; the median is printed too) is divided by the plain network's minimum
from the same run. Prints one JSON object per adaptor and a summary object.

    flock /tmp/odeattn-bench.lock python benchmarks/bench_adaptors.py --model resnet164 --batch 16
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from odeattn.adaptors import ADAPTORS
from odeattn.models import create_model


def _train_step(model: torch.nn.Module, x: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    model(x).float().logsumexp(1).sum().backward()


def _infer(model: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        model(x)


def _time(fn, model, x) -> float:
    t0 = time.perf_counter()
    fn(model, x)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet164")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--adaptors", nargs="*", default=sorted(ADAPTORS))
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--no-channels-last", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    names = ["none", *[n for n in args.adaptors if n != "none"]]
    fmt = torch.contiguous_format if args.no_channels_last else torch.channels_last
    models = {
        n: create_model(args.model, num_classes=10, adaptor=None if n == "none" else n).to(
            memory_format=fmt
        )
        for n in names
    }
    x = torch.randn(args.batch, 3, args.size, args.size).to(memory_format=fmt)
    times: dict[str, dict[str, list[float]]] = {n: {"train": [], "infer": []} for n in names}
    for m in models.values():  # warm-up
        m.train()
        _train_step(m, x)
        m.eval()
        _infer(m, x)
    for _ in range(args.rounds):
        for n, m in models.items():
            m.train()
            times[n]["train"].append(_time(_train_step, m, x))
            m.eval()
            times[n]["infer"].append(_time(_infer, m, x))
    base = {k: min(times["none"][k]) for k in ("train", "infer")}
    settings = {
        "model": args.model,
        "batch": args.batch,
        "size": args.size,
        "rounds": args.rounds,
        "threads": args.threads,
        "channels_last": not args.no_channels_last,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    summary = {}
    for n in names:
        best = {k: min(times[n][k]) for k in ("train", "infer")}
        med = {k: statistics.median(times[n][k]) for k in ("train", "infer")}
        row = {
            "adaptor": n,
            "params": sum(p.numel() for p in models[n].parameters()),
            "train_min_s": round(best["train"], 4),
            "infer_min_s": round(best["infer"], 4),
            "train_median_s": round(med["train"], 4),
            "infer_median_s": round(med["infer"], 4),
            "train_ratio": round(best["train"] / base["train"], 3),
            "infer_ratio": round(best["infer"] / base["infer"], 3),
        }
        summary[n] = [row["train_ratio"], row["infer_ratio"]]
        print(json.dumps(row))
    print(
        json.dumps(
            {
                "summary": "min-time ratio vs plain (train fwd+bwd, inference)",
                **summary,
                "settings": settings,
            }
        )
    )


if __name__ == "__main__":
    main()
