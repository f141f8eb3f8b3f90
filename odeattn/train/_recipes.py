"""Training configuration: :class:`TrainConfig`, the papers' :data:`RECIPES`, the lr schedule.

The learning rate at iteration ``it`` (epoch ``e = it / steps_per_epoch``) is ``lr · f(it)`` with

    f = w(it) · g(e),   w = min(1, (it + 1) / (warmup_epochs · steps))   (linear warm-up)
    g = 1 | gamma^⌊e / step_size⌋ | gamma^#{m ∈ milestones : e ≥ m} | ½(1 + cos(π (e − warm) / (E − warm)))

for the ``constant`` / ``step`` / ``multistep`` / ``cosine`` schedules, applied per iteration
(as torchdiffeq's ODE-Net script does); at epoch boundaries ``multistep`` equals PyTorch's
per-epoch ``MultiStepLR``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from odeattn._errors import did_you_mean as _closest
from odeattn._errors import must

__all__ = ["COUNTS", "RANGES", "RECIPES", "SCHEDULES", "TrainConfig", "lr_factor"]

SCHEDULES = ("constant", "step", "multistep", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``fit`` needs besides model and data. Epoch counts may be fractional for warm-up."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # constant | step | multistep | cosine
    milestones: tuple[int, ...] = ()  # multistep: epochs after which lr *= gamma
    step_size: int = 30  # step: lr *= gamma every step_size epochs
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up from lr/(steps) to lr, per iteration
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max global L2 norm of the gradient
    augment: bool = True  # the dataset's crop/flip (normalisation always applies)
    eval_batch_size: int = 1000
    device: str = "auto"  # auto = cuda when available
    amp: bool | None = None  # bf16 autocast; None = on for CUDA
    channels_last: bool | None = None  # None = on for CUDA
    compile: bool = False  # torch.compile the model
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms (warn-only), no cudnn autotune
    eval_test: bool = True  # evaluate the test split once, after training

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        for name, example in COUNTS.items():
            _check_count(name, getattr(self, name), example)
        for name, (low, closed, high, example) in RANGES.items():
            _check_number(name, getattr(self, name), low, closed, high, example)
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"`schedule` must be one of {SCHEDULES}, but got schedule={self.schedule!r}"
                f"{_closest(self.schedule, SCHEDULES)}"
            )
        if self.nesterov and self.momentum <= 0:
            raise ValueError(
                "`nesterov=True` needs `momentum` > 0; set momentum=0.9 or nesterov=False"
            )
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, 0.0, False, math.inf, "5.0, or None")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"`milestones` must be increasing, but got {self.milestones}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], base: TrainConfig | None = None) -> TrainConfig:
        """``base`` (default: defaults) with ``values`` applied; unknown keys are a ValueError."""
        names = [f.name for f in dataclasses.fields(cls)]
        for k in values:
            if k not in names:
                raise ValueError(
                    f"unknown training option {k!r}{_closest(k, names)}. Valid: {', '.join(names)}"
                )
        return dataclasses.replace(base or cls(), **values)

    def with_epochs(self, epochs: int) -> TrainConfig:
        """The same recipe stretched to ``epochs``: milestones, step size and warm-up scale too."""
        r = epochs / self.epochs
        return dataclasses.replace(
            self,
            epochs=epochs,
            milestones=tuple(max(1, round(m * r)) for m in self.milestones),
            step_size=max(1, round(self.step_size * r)),
            warmup_epochs=self.warmup_epochs * r,
        )


# Numeric settings and the ranges they must lie in: (low, low allowed, high (excluded), example).
# Checked when a TrainConfig is built, so every front end (the CLI's --set, an --arch file, a study's
# YAML) refuses nan, inf, lr=0 or momentum=1 before anything trains.
RANGES: dict[str, tuple[float, bool, float, str]] = {
    "lr": (0.0, False, math.inf, "0.1"),
    "momentum": (0.0, True, 1.0, "0.9 (0 for plain SGD)"),
    "weight_decay": (0.0, True, math.inf, "5e-4 (0 for none)"),
    "gamma": (0.0, False, math.inf, "0.1"),
    "warmup_epochs": (0.0, True, math.inf, "1.0 (0 for none)"),
    "label_smoothing": (0.0, True, 1.0, "0.1 (0 for none)"),
}
COUNTS: dict[str, str] = {  # positive integers, with an example
    "epochs": "15",
    "batch_size": "64",
    "eval_batch_size": "1000",
    "step_size": "30",
}


def _check_count(name: str, v: object, example: str) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(
            f"{must(name, 'be a positive int', v)}{_as_text(v)}; e.g. {name}={example}"
        )


def _check_number(
    name: str, v: object, low: float, closed: bool, high: float, example: str
) -> None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if ok and (v >= low if closed else v > low) and v < high:
        return
    where = (
        f"a finite number {'>=' if closed else '>'} {low:g}"
        if math.isinf(high)
        else f"in {'[' if closed else '('}{low:g}, {high:g})"
    )
    raise ValueError(f"{must(name, 'be ' + where, v)}{_as_text(v)}; e.g. {name}={example}")


def _as_text(v: object) -> str:
    """A number that YAML read as text (PyYAML reads ``1e-3`` as a string) says so."""
    try:
        number = float(v) if isinstance(v, str) else math.nan
    except ValueError:
        return ""
    return f" (YAML reads {v} as text; write {number!r})" if math.isfinite(number) else ""


RECIPES: dict[str, TrainConfig] = {
    # Embedded default: small pre-act ResNet on 8x8 digits, seconds per epoch on a laptop CPU.
    "digits": TrainConfig(
        epochs=15, batch_size=64, lr=0.1, weight_decay=5e-4, schedule="cosine", warmup_epochs=1.0
    ),
    # He et al. 2016 ResNet-164 on CIFAR (bearpaw cifar.py, used by DIANet/IEBN/SEM/...).
    "resnet164_cifar": TrainConfig(
        epochs=164,
        batch_size=128,
        lr=0.1,
        weight_decay=1e-4,
        schedule="multistep",
        milestones=(81, 122),
    ),
    # DIANet's DIA-ResNet-164 run: 180 epochs, x0.1 at 60 and 120.
    "dianet_cifar": TrainConfig(
        epochs=180,
        batch_size=128,
        lr=0.1,
        weight_decay=1e-4,
        schedule="multistep",
        milestones=(60, 120),
    ),
    # DIANet's WRN-52-4: 200 epochs, x0.2 at 80/120/160, wd 5e-4.
    "dianet_wrn_cifar": TrainConfig(
        epochs=200,
        batch_size=128,
        lr=0.1,
        weight_decay=5e-4,
        schedule="multistep",
        milestones=(80, 120, 160),
        gamma=0.2,
    ),
    # RKCNN train_cifar.py: batch 32, Nesterov, 300 epochs, x0.1 at 50 % and 75 %.
    "rkcnn_cifar": TrainConfig(
        epochs=300,
        batch_size=32,
        lr=0.1,
        nesterov=True,
        weight_decay=1e-4,
        schedule="multistep",
        milestones=(150, 225),
    ),
    # torchdiffeq odenet_mnist.py: lr 0.1 (batch 128), no weight decay, x0.1 at 60/100/140.
    "odenet_mnist": TrainConfig(
        epochs=160,
        batch_size=128,
        lr=0.1,
        weight_decay=0.0,
        schedule="multistep",
        milestones=(60, 100, 140),
    ),
}


def lr_factor(cfg: TrainConfig, steps_per_epoch: int, it: int) -> float:
    """Multiplier of ``cfg.lr`` at iteration ``it`` (0-based); schedules act per iteration."""
    e = it / steps_per_epoch  # fractional epoch
    warm = cfg.warmup_epochs
    f = min(1.0, (it + 1) / (warm * steps_per_epoch)) if warm > 0 else 1.0
    if cfg.schedule == "step":
        f *= cfg.gamma ** math.floor(e / cfg.step_size)
    elif cfg.schedule == "multistep":
        f *= cfg.gamma ** sum(e >= m for m in cfg.milestones)
    elif cfg.schedule == "cosine":
        span = max(cfg.epochs - warm, 1e-12)
        f *= 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, e - warm) / span)))
    return f
