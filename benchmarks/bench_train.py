"""Training throughput: fit() vs a minimal hand-written loop; epoch times of the digits models;
on CUDA, ResNet-164 images/s with/without bf16 / channels_last / compile, the share of step
time spent outside forward+backward and in the data pipeline (``train_throughput``, also run by
``gpu_check.py``).

Prints one JSON object per case. Run alone: ``flock /tmp/odeattn-bench.lock python
benchmarks/bench_train.py [--repeats 5] [--skip-cuda]``. The CUDA cases run only when
``torch.cuda.is_available()``; on a CPU-only machine they print ``{"case": "cuda", "skipped": ...}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from odeattn.data import BatchTransform, Dataset, load_dataset
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


def _core_step_time(model, x, y, opt, amp: bool, steps: int, device: torch.device):
    """Seconds per (forward+backward) and per (forward+backward+SGD) on one fixed batch."""
    out = []
    for with_opt in (False, True):
        for i in range(steps + 3):
            if i == 3:
                _sync(device)
                t0 = time.perf_counter()
            with torch.autocast(device.type, torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if with_opt:
                opt.step()
        _sync(device)
        out.append((time.perf_counter() - t0) / steps)
    return out[0], out[1]


def synthetic_cifar(n_train: int, device: torch.device, size: int = 32, **kw) -> Dataset:
    """Procedural uint8 images of CIFAR's shape (3×size×size, 10 classes) on ``device``, with
    CIFAR's augmentation: random crop with zero padding size/8 (4 at 32) and horizontal flip."""
    data = load_dataset("synthetic", n_train=n_train, size=size, channels=3, device=device, **kw)
    return dataclasses.replace(data, flip=True)


def data_time(data: Dataset, batch: int, cl: bool, steps: int) -> float:
    """Seconds per batch of the data pipeline alone, as fit's epoch runs it: index the
    device-resident uint8 split, crop + flip + normalise on the device (BatchTransform)."""
    dev = data.device
    tf = BatchTransform(
        data.mean, data.std, crop_pad=data.crop_pad, flip=data.flip, device=dev, channels_last=cl
    )
    gen = torch.Generator(device=dev).manual_seed(0)
    perm = torch.randperm(len(data.train), generator=gen, device=dev)
    n = len(data.train) - batch + 1
    for i in range(steps + 3):
        if i == 3:
            _sync(dev)
            t0 = time.perf_counter()
        idx = perm[(i * batch) % n : (i * batch) % n + batch]
        tf.augment(data.train.x[idx], gen), data.train.y[idx]
    _sync(dev)
    return (time.perf_counter() - t0) / steps


def train_throughput(
    model_kw: dict,
    device: torch.device,
    *,
    amp: bool,
    channels_last: bool,
    compile: bool,
    steps: int,
    batch: int = 128,
    size: int = 32,
    epochs: int = 3,
) -> dict:
    """ResNet-164 (``model_kw``: adaptor, blocks, ...) trained by fit() on synthetic CIFAR-shaped
    data of ``steps`` batches: images/s (median of the epochs after the first, which pays for
    compilation and cudnn autotuning), and the share of fit()'s step spent outside
    forward+backward(+SGD) on one fixed batch and in the data pipeline alone (target ≤ 5 %)."""
    data = synthetic_cifar(batch * steps, device, size, n_test=batch, val_fraction=0.0)
    model = create_model("resnet164", num_classes=10, **model_kw)
    history: list[dict[str, float]] = []
    cfg = TrainConfig(epochs, batch, lr=0.05, schedule="constant", eval_test=False)
    cfg = dataclasses.replace(
        cfg, device=str(device), amp=amp, channels_last=channels_last, compile=compile
    )
    loss = fit(model, data, cfg, report=lambda e, m: history.append(m))["train_loss"]
    epoch_s = [m["epoch_time_s"] for m in history]
    fit_step = batch / statistics.median(m["images_per_s"] for m in history[1:])
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=device)
    net = torch.compile(model) if compile else model
    fused = True if device.type == "cuda" else None
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=fused)
    fb, fbo = _core_step_time(net, x, y, opt, amp, min(steps, 50), device)
    t_data = data_time(data, batch, channels_last, min(steps, 50))
    return {
        "batch": batch,
        "bf16": amp,
        "channels_last": channels_last,
        "compile": compile,
        "images_per_s": batch / fit_step,
        "step_ms": 1e3 * fit_step,
        "first_epoch_s": epoch_s[0],
        "epoch_s": statistics.median(epoch_s[1:]),
        "train_loss": loss,
        "data_ms": 1e3 * t_data,
        "data_share": t_data / fit_step,
        "share_outside_fwd_bwd": 1 - fb / fit_step,
        "share_outside_fwd_bwd_sgd": 1 - fbo / fit_step,
        "target_data_share": 0.05,
    }


def bench_cuda_resnet164(steps: int) -> None:
    if not torch.cuda.is_available():
        _emit(case="cuda", skipped="no CUDA device on this machine; run this script on a GPU box")
        return
    MACHINE["gpu"] = torch.cuda.get_device_name()
    for amp, cl, comp in (
        (False, False, False),
        (True, False, False),
        (True, True, False),
        (True, True, True),
    ):
        res = train_throughput(
            {}, torch.device("cuda"), amp=amp, channels_last=cl, compile=comp, steps=steps
        )
        _emit(case="cuda_resnet164", **res)


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
