"""Training throughput: fit() vs a minimal hand-written loop; epoch times of the digits models;
on CUDA, ResNet-164 images/s with/without bf16 / channels_last / compile and the share of step
time spent outside forward+backward.

Prints one JSON object per case. Run alone: ``flock /tmp/odeattn-bench.lock python
benchmarks/bench_train.py [--repeats 5] [--skip-cuda]``. The CUDA cases run only when
``torch.cuda.is_available()``; on a CPU-only machine they print ``{"case": "cuda", "skipped": ...}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from odeattn.data import load_dataset
from odeattn.models import create_model
from odeattn.train import RECIPES, TrainConfig, fit

MACHINE = {
    "cpu": platform.processor() or platform.machine(),
    "threads": torch.get_num_threads(),
    "torch": torch.__version__,
}


def _emit(**kw) -> None:
    print(json.dumps({**kw, "machine": MACHINE}), flush=True)


def _collect(key: str, into: list[float]):
    """A report callback that records ``metrics[key]`` and never stops."""

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        into.append(metrics[key])
        return False

    return report


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def hand_loop(model, data, epochs: int, batch: int, lr: float, device: torch.device) -> None:
    """The reference: the plainest device-resident loop with crop+flip, SGD, constant lr."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    x_all, y_all, p = data.train.x, data.train.y, data.crop_pad
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    n, (c, h, w) = len(y_all), data.input_shape
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, device=device)
        for i in range(0, n - 1, batch):
            idx = perm[i : i + batch]
            b = idx.numel()
            xb = F.pad(x_all[idx], (p, p, p, p))  # (B, C, H+2p, W+2p) uint8
            oy = torch.randint(0, 2 * p + 1, (b, 1, 1, 1), device=device)
            ox = torch.randint(0, 2 * p + 1, (b, 1, 1, 1), device=device)
            rows = (oy + torch.arange(h, device=device).view(1, 1, h, 1)).expand(b, c, h, w + 2 * p)
            xb = xb.gather(2, rows)  # (B, C, H, W+2p)
            cols = (ox + torch.arange(w, device=device).view(1, 1, 1, w)).expand(b, c, h, w)
            xb = xb.gather(3, cols)  # (B, C, H, W)
            if data.flip:
                xb = torch.where(torch.rand(b, 1, 1, 1, device=device) < 0.5, xb.flip(3), xb)
            xb = (xb.float() / 255 - mean) / std
            loss = F.cross_entropy(model(xb), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    _sync(device)


def bench_fit_vs_hand(repeats: int, epochs: int) -> None:
    device = torch.device("cpu")
    data = load_dataset("digits", val_fraction=0.0)
    cfg = TrainConfig(
        epochs=epochs, batch_size=64, lr=0.05, schedule="constant", device="cpu", eval_test=False
    )
    t_fit, t_hand = [], []
    for _ in range(repeats):  # alternate to share the VM's drift
        model = create_model("digits_resnet", num_classes=10)
        t0 = time.perf_counter()
        fit(model, data, cfg)
        t_fit.append(time.perf_counter() - t0)
        model = create_model("digits_resnet", num_classes=10)
        t0 = time.perf_counter()
        hand_loop(model, data, epochs, 64, 0.05, device)
        t_hand.append(time.perf_counter() - t0)
    n = len(data.train) * epochs
    f, h = statistics.median(t_fit), statistics.median(t_hand)
    _emit(
        case="fit_vs_hand_loop",
        model="digits_resnet",
        data="digits (8x8, crop+normalise)",
        device="cpu",
        epochs=epochs,
        repeats=repeats,
        fit_images_per_s=n / f,
        hand_images_per_s=n / h,
        ratio=h / f,
        target=">= 0.95",
    )


DIGITS_MODELS = {
    "digits_resnet": {},
    "digits_resnet[se, 3-3-3]": {"adaptor": "se", "blocks": [3, 3, 3]},
    "digits_resnet_bottleneck": {},
    "rkcnn[digits study]": {"growth": [12, 12, 12], "steps": [3, 3, 3]},
}


def bench_digits_epochs(repeats: int) -> None:
    data = load_dataset("digits")
    for label, kw in DIGITS_MODELS.items():
        name = label.split("[")[0]
        model = create_model(name, num_classes=10, in_channels=1, **kw)
        times: list[float] = []
        cfg = TrainConfig.from_dict(
            {"epochs": repeats + 1, "device": "cpu", "eval_test": False}, RECIPES["digits"]
        )
        fit(model, data, cfg, report=_collect("epoch_time_s", times))
        _emit(
            case="digits_epoch",
            model=label,
            params=sum(p.numel() for p in model.parameters()),
            epoch_s=statistics.median(times[1:]),
            first_epoch_s=times[0],
            train_images=len(data.train),
            val_images=len(data.val),
        )


def _core_step_time(model, x, y, opt, amp: bool, steps: int) -> tuple[float, float]:
    """Seconds per (forward+backward) and per (forward+backward+SGD) on one fixed batch."""
    out = []
    for with_opt in (False, True):
        for i in range(steps + 3):
            if i == 3:
                torch.cuda.synchronize()
                t0 = time.perf_counter()
            with torch.autocast("cuda", torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if with_opt:
                opt.step()
        torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) / steps)
    return out[0], out[1]


def bench_cuda_resnet164(steps: int) -> None:
    if not torch.cuda.is_available():
        _emit(case="cuda", skipped="no CUDA device on this machine; run this script on a GPU box")
        return
    data = load_dataset(
        "synthetic",
        n_train=128 * steps,
        n_test=128,
        size=32,
        channels=3,
        val_fraction=0.0,
        device="cuda",
    )
    MACHINE["gpu"] = torch.cuda.get_device_name()
    for amp, cl, comp in (
        (False, False, False),
        (True, False, False),
        (True, True, False),
        (True, True, True),
    ):
        model = create_model("resnet164", num_classes=10)
        ips: list[float] = []
        cfg = TrainConfig(
            epochs=3,
            batch_size=128,
            lr=0.05,
            schedule="constant",
            device="cuda",
            amp=amp,
            channels_last=cl,
            compile=comp,
            eval_test=False,
        )
        fit(model, data, cfg, report=_collect("images_per_s", ips))
        fit_step = 128 / statistics.median(ips[1:])
        fmt = torch.channels_last if cl else torch.contiguous_format
        x = torch.randn(128, 3, 32, 32, device="cuda").contiguous(memory_format=fmt)
        y = torch.randint(0, 10, (128,), device="cuda")
        net = torch.compile(model) if comp else model
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True)
        fb, fbo = _core_step_time(net, x, y, opt, amp, steps=min(steps, 50))
        _emit(
            case="cuda_resnet164",
            bf16=amp,
            channels_last=cl,
            compile=comp,
            images_per_s=statistics.median(ips[1:]),
            step_ms=1e3 * fit_step,
            share_outside_fwd_bwd=1 - fb / fit_step,
            share_outside_fwd_bwd_sgd=1 - fbo / fit_step,
            target_share="<= 0.05",
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2, help="epochs per fit-vs-hand repeat")
    ap.add_argument("--cuda-steps", type=int, default=100)
    ap.add_argument("--skip-cuda", action="store_true")
    args = ap.parse_args()
    bench_fit_vs_hand(args.repeats, args.epochs)
    bench_digits_epochs(args.repeats)
    if not args.skip_cuda:
        bench_cuda_resnet164(args.cuda_steps)


if __name__ == "__main__":
    main()
