"""Zero-cost proxies: the wall time of each proxy per architecture, relative to one training epoch.

For each digits model, in one run: one epoch of ``fit`` with the digits recipe (median of
``--epochs`` epochs after the first, which pays the warm-up), then every proxy in
``odeattn.proxies.PROXIES`` on one batch of ``--batch`` normalised digits training images
(median of ``--repeats`` calls after one warm-up call). ``per_epoch`` = proxy seconds / epoch
seconds: the share of one epoch a proxy costs (a screen that keeps 1 in k candidates saves
``(k − 1)·epochs`` epochs per kept one, for ``k·per_epoch`` epochs of scoring).

    flock /tmp/odeattn-bench.lock python benchmarks/bench_proxies.py [--repeats 5] [--epochs 3]

Prints one JSON object per model and a summary object.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from _common import cpu_name, time_calls

from odeattn.data import Dataset, load_dataset
from odeattn.models import create_model
from odeattn.proxies import PROXIES
from odeattn.train import RECIPES, TrainConfig, fit

MODELS = {
    "digits_resnet": ("digits_resnet", {}),
    "digits_resnet_bottleneck": ("digits_resnet_bottleneck", {}),
    "rkcnn[12-12-12, 3-3-3]": ("rkcnn", {"growth": [12, 12, 12], "steps": [3, 3, 3]}),
}


def _batch(data: Dataset, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``size`` training images, normalised like training: (B, 1, 8, 8), (B,)."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    x = (data.train.x[:size].float() / 255 - mean) / std
    return x, data.train.y[:size]


def _epoch_s(name: str, kw: dict, data: Dataset, epochs: int) -> float:
    times: list[float] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        times.append(metrics["epoch_time_s"])
        return False

    model = create_model(name, num_classes=10, in_channels=1, **kw)
    cfg = TrainConfig.from_dict(
        {"epochs": epochs, "device": "cpu", "eval_test": False}, RECIPES["digits"]
    )
    fit(model, data, cfg, report=report)
    return statistics.median(times[1:])


def bench_model(label: str, data: Dataset, args: argparse.Namespace) -> dict:
    name, kw = MODELS[label]
    epoch = _epoch_s(name, kw, data, args.epochs)
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_channels=1, **kw)
    x, y = _batch(data, args.batch)
    out = {}
    for proxy_name, proxy in PROXIES.items():
        value = proxy(model, x, y)  # warm-up call, also the score reported
        sec = statistics.median(time_calls(lambda p=proxy: p(model, x, y), args.repeats))
        out[proxy_name] = {"s": round(sec, 5), "per_epoch": round(sec / epoch, 4), "score": value}
    params = sum(p.numel() for p in model.parameters())
    return {"case": "proxy_cost", "model": label, "params": params, "epoch_s": round(epoch, 3),
            "proxies": out}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per proxy (median)")
    ap.add_argument(
        "--epochs", type=int, default=3, help="epochs of fit; median of all but the first"
    )
    ap.add_argument("--batch", type=int, default=64, help="proxy batch (digits recipe batch: 64)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs must be >= 2 (the first epoch is warm-up)")
    torch.set_num_threads(args.threads)
    data = load_dataset("digits")
    settings = {
        "machine": cpu_name(),
        "threads": args.threads,
        "torch": torch.__version__,
        "batch": args.batch,
        "repeats": args.repeats,
        "epochs": args.epochs,
        "epoch": f"digits recipe, {len(data.train)} train + {len(data.val)} val images",
    }
    summary = {}
    for label in MODELS:
        row = bench_model(label, data, args)
        print(json.dumps({**row, "settings": settings}), flush=True)
        summary[label] = {k: v["per_epoch"] for k, v in row["proxies"].items()}
    print(json.dumps({"summary": "proxy seconds / epoch seconds", **summary, "settings": settings}))


if __name__ == "__main__":
    main()
