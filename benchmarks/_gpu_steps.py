"""The measuring steps of ``gpu_check.py`` and the worker process that runs them.

Each step measures one thing with the library's public entry points and the existing benchmark
scripts' functions, and returns a JSON-ready dict:

- ``env``: the device, torch / CUDA / cudnn / torchdiffeq versions, whether the CPU kernels built;
- ``train_<model>`` / ``compile_<model>``: ResNet-164, SE-, StepNet- and DIA-ResNet-164 trained by
  ``fit`` on CIFAR-shaped synthetic data (batch 128, bf16 autocast + channels_last, eager or
  ``torch.compile``): images/s and the share of a step spent in the data pipeline
  (``bench_train.train_throughput``);
- ``nsi_overhead``: ResNet-164 eval forward with and without ``stiffness.record``, fp32 and bf16
  (``bench_stiffness.bench_record``; target ratio ≤ 1.03);
- ``odeint``: dopri5 / tsit5 in ``odeattn.odeint`` against torchdiffeq at equal tolerance on the
  device, forward and forward+backward (``bench_odeint.case``);
- ``epoch_cifar10``: one (or two) ``fit`` epochs of ResNet-164 with the ``resnet164_cifar`` recipe
  on 50,000 CIFAR-shaped images (45,000 train + 5,000 validation, as the paper-scale runs split).

The worker (``gpu_check.py --worker PLAN``) runs the planned steps in order and appends one JSON
line per event to the plan's events file (``start``, then ``done`` with the result or the
error), so the parent can kill it when a step overruns and start a fresh one for the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import time
import traceback
from collections.abc import Callable
from pathlib import Path

MODELS = {"resnet164": None, "se": "se", "stepnet": "stepnet", "dia": "dia_lstm"}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each step runs: the GPU check, or ``--cpu-smoke`` (every step once, tiny)."""

    batch: int = 128
    size: int = 32
    steps: int = 20  # batches per training epoch of the throughput runs
    model_kw: tuple[tuple[str, object], ...] = ()  # ResNet-164 by default
    nsi_batch: int = 128
    nsi_reps: int = 20
    ode_repeats: int = 7
    epoch_images: int = 50_000
    epoch_epochs: int = 2


SIZES = {
    "gpu": Sizes(),
    "cpu-smoke": Sizes(
        batch=4,
        size=16,
        steps=1,
        model_kw=(("blocks", (2, 2, 2)), ("widths", (4, 8, 16))),
        nsi_batch=4,
        nsi_reps=2,
        ode_repeats=1,
        epoch_images=100,
        epoch_epochs=1,
    ),
}


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def step_env(sizes: Sizes, smoke: bool, budget: float) -> dict:
    """What ran: device, versions, threads; on CUDA the memory and capability."""
    import torch
    from _common import cpu_name

    import odeattn
    from odeattn.stiffness import _kernels

    out = {
        "odeattn": str(Path(odeattn.__file__).parent),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name(),
        "device_type": device().type,
        "cpu": cpu_name(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_kernels_built": _kernels.load() is not None,
    }
    with contextlib.suppress(ImportError):
        import torchdiffeq

        out["torchdiffeq"] = torchdiffeq.__version__
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        out |= {
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "gpu_memory_gib": props.total_memory / 2**30,
            "capability": f"{props.major}.{props.minor}",
        }
    return out


@contextlib.contextmanager
def _smoke_compile(smoke: bool):
    """In ``--cpu-smoke``, ``torch.compile`` traces with dynamo but skips inductor's code
    generation (backend ``eager``): the path is exercised in seconds on 2 CPU cores."""
    import torch

    if not smoke:
        yield
        return
    original = torch.compile
    torch.compile = lambda model, **kw: original(model, **{"backend": "eager", **kw})
    try:
        yield
    finally:
        torch.compile = original


def step_train(sizes: Sizes, smoke: bool, budget: float, model: str, compile: bool) -> dict:
    """fit() images/s of one ResNet-164 variant, bf16 autocast + channels_last."""
    import torch
    from bench_train import train_throughput

    kw = dict(sizes.model_kw) | ({"adaptor": MODELS[model]} if MODELS[model] else {})
    if compile:  # the variants share forward code objects: no stale guards, no cache-limit fallback
        torch._dynamo.reset()
    with _smoke_compile(smoke and compile):
        out = train_throughput(
            kw,
            device(),
            amp=True,
            channels_last=True,
            compile=compile,
            steps=sizes.steps,
            batch=sizes.batch,
            size=sizes.size,
        )
    return {"model": model, **out} | ({"compile_backend": "eager"} if smoke and compile else {})


def step_nsi(sizes: Sizes, smoke: bool, budget: float) -> dict:
    """Recording overhead of NSI on a ResNet-164 eval forward, fp32 and bf16 autocast."""
    from bench_stiffness import bench_record

    rows = [
        bench_record(
            sizes.nsi_reps,
            device=device().type,
            batch=sizes.nsi_batch,
            amp=amp,
            model_kw=dict(sizes.model_kw),
        )
        for amp in (False, True)
    ]
    return {"rows": rows}


def step_odeint(sizes: Sizes, smoke: bool, budget: float) -> dict:
    """dopri5 and tsit5: odeattn vs torchdiffeq at equal tolerance on the device (one run)."""
    import torchdiffeq
    from _odeint_methods import _solvers
    from bench_odeint import case, problems

    rows = []
    for name, f, y0 in problems():
        f, y0 = f.to(device()), y0.to(device())
        for method in ("dopri5", "tsit5"):
            if method not in _solvers(torchdiffeq):
                why = f"torchdiffeq {torchdiffeq.__version__} has no {method}"
                rows.append({"problem": name, "method": method, "skipped": why})
                continue
            for backward in (False, True):
                row = case(name, f, y0, method, backward, sizes.ode_repeats)
                rows.append({k: row[k] for k in ("problem", "method", "mode", "compare", "ratio")})
                for lib in ("odeattn", "torchdiffeq"):
                    rows[-1][lib] = {k: row[lib][k] for k in ("median_ms", "err_vs_ref", "nfe")}
    return {"rows": rows, "torchdiffeq": torchdiffeq.__version__}


def step_epoch(sizes: Sizes, smoke: bool, budget: float) -> dict:
    """Epoch time of ResNet-164 on 50,000 CIFAR-shaped images with the resnet164_cifar recipe
    (bf16 + channels_last on CUDA, eager): the train pass over 45,000 and validation of 5,000.
    A second epoch (without the first one's cudnn autotuning) runs when the budget allows."""
    t0 = time.perf_counter()
    from bench_train import synthetic_cifar

    from odeattn.models import create_model
    from odeattn.train import RECIPES, TrainConfig, fit

    data = synthetic_cifar(sizes.epoch_images, device(), sizes.size, n_test=sizes.batch)
    kw = {"epochs": sizes.epoch_epochs, "eval_test": False, "device": device().type}
    cfg = TrainConfig.from_dict(kw | {"batch_size": sizes.batch}, RECIPES["resnet164_cifar"])
    epochs: list[dict[str, float]] = []
    fit(
        create_model("resnet164", **dict(sizes.model_kw)),
        data,
        cfg,
        report=_keep(epochs, t0, budget),
    )
    keys = ("epoch_time_s", "images_per_s", "train_loss", "val_accuracy")
    return {
        "model": "resnet164",
        "recipe": "resnet164_cifar",
        "batch": sizes.batch,
        "train_images": len(data.train),
        "val_images": len(data.val),
        "epochs": [{k: e[k] for k in keys if k in e} for e in epochs],
        "epoch_s": epochs[-1]["epoch_time_s"],
        "epoch_s_from": "epoch 2" if len(epochs) > 1 else "epoch 1 (with cudnn autotuning)",
    }


def _keep(into: list[dict[str, float]], t0: float, budget: float):
    """A report callback that keeps every epoch's metrics and stops fit() when one more epoch
    would not end within 90 % of the step's ``budget`` seconds (counted from ``t0``)."""

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        into.append(metrics)
        return time.perf_counter() - t0 + metrics["epoch_time_s"] > 0.9 * budget

    return report


STEPS: dict[str, tuple[Callable[..., dict], dict]] = {
    "env": (step_env, {}),
    **{f"train_{m}": (step_train, {"model": m, "compile": False}) for m in MODELS},
    "nsi_overhead": (step_nsi, {}),
    "odeint": (step_odeint, {}),
    "epoch_cifar10": (step_epoch, {}),
    **{f"compile_{m}": (step_train, {"model": m, "compile": True}) for m in MODELS},
}


def _write(events: Path, **event) -> None:
    with open(events, "a") as fh:
        fh.write(json.dumps(event) + "\n")
        fh.flush()


def worker(plan_path: str) -> None:
    """Run the steps of a plan (written by gpu_check.py), one event line each in its events
    file; an exception in a step is recorded as ``failed`` and the next step runs."""
    import torch

    plan = json.loads(Path(plan_path).read_text())
    smoke, events = plan["mode"] == "cpu-smoke", Path(plan["events"])
    if smoke:
        torch.set_num_threads(1)
    sizes = SIZES[plan["mode"]]
    for name in plan["steps"]:
        fn, kw = STEPS[name]
        budget = min(
            plan["limits"][name], plan["deadline_unix"] + plan["min_start_s"] - time.time()
        )
        if time.time() > plan["deadline_unix"]:
            _write(events, event="done", step=name, status="skipped", reason="deadline")
            continue
        _write(events, event="start", step=name, t=time.time())
        t0 = time.perf_counter()
        try:
            result, status = fn(sizes, smoke, budget, **kw), "ok"
        except Exception as e:  # a failed measurement is reported, and the next step runs
            last = traceback.extract_tb(e.__traceback__)[-1]
            where = f"{Path(last.filename).name}:{last.lineno}"
            result, status = {"error": f"{type(e).__name__}: {e} ({where})"[:500]}, "failed"
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        seconds = time.perf_counter() - t0
        _write(events, event="done", step=name, status=status, seconds=seconds, result=result)
