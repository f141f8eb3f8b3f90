"""LM-ResNet vs the same-depth ResNet on digits: test accuracy, mean of seeds with spread and CI.

``digits_lm_resnet`` (Lu et al., ICML 2018: x_{n+1} = (1 − k_n) x_n + k_n x_{n−1} + f(x_n),
one learnable k_n per block) against ``digits_resnet`` (pre-act basic 3-3-3, the same stem,
branches, shortcuts and head), both with the ``digits`` recipe (15 epochs, SGD 0.1, cosine),
seeds 0…n−1 (the seed fixes the initialisation and the data order). Prints one JSON object per
run and a summary: per model mean test accuracy, the sample SD, the 95 % t-interval of the mean,
and the paired difference LM − ResNet (same seeds) with its 95 % t-interval, plus the learned k_n.

Run: ``flock /tmp/odeattn-bench.lock python benchmarks/bench_lm_resnet.py [--seeds 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from _common import cpu_name

from odeattn.data import load_dataset
from odeattn.models import create_model
from odeattn.train import RECIPES, TrainConfig, fit

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
MODELS = ("digits_resnet", "digits_lm_resnet")


def ci(xs: list[float]) -> dict:
    """Mean, sample SD, n and the 95 % t-interval half-width of the mean."""
    n, m = len(xs), statistics.fmean(xs)
    sd = statistics.stdev(xs) if n > 1 else float("nan")
    half = T975.get(n - 1, 1.96) * sd / n**0.5 if n > 1 else float("nan")
    return {"n": n, "mean": m, "sd": sd, "ci95": [m - half, m + half]}


def run(name: str, seed: int, data) -> dict:
    cfg = TrainConfig.from_dict({"seed": seed, "device": "cpu"}, RECIPES["digits"])
    torch.manual_seed(seed)
    model = create_model(name, num_classes=10)
    t0 = time.perf_counter()
    out = fit(model, data, cfg)
    ks = [round(float(p), 4) for n, p in model.named_parameters() if n.endswith(".k")]
    return {
        "model": name,
        "seed": seed,
        "params": sum(p.numel() for p in model.parameters()),
        "test_accuracy": out["test_accuracy"],
        "best_val_accuracy": out["best_val_accuracy"],
        "seconds": time.perf_counter() - t0,
        "k": ks,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("digits")
    acc = {m: [] for m in MODELS}
    for seed in range(args.seeds):
        for name in MODELS:
            row = run(name, seed, data)
            acc[name].append(100 * row["test_accuracy"])
            print(json.dumps(row), flush=True)
    diff = [a - b for a, b in zip(acc["digits_lm_resnet"], acc["digits_resnet"])]
    summary = {m: ci(v) for m, v in acc.items()}
    summary["lm_minus_resnet"] = ci(diff)
    meta = {"machine": cpu_name(), "torch": torch.__version__, "threads": args.threads}
    print(json.dumps({"summary": summary, "seeds": list(range(args.seeds)), **meta}), flush=True)


if __name__ == "__main__":
    main()
