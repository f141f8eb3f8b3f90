"""Everything ``odeint`` accepts, checked before a step is taken: ``OPTIONS`` (each option with what
it does), the option values, ``y0``, ``rtol``/``atol`` and the output times ``t`` (finite, strictly
monotone). Unknown keys are errors naming the closest valid one (torchdiffeq only warns).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from odeattn._errors import did_you_mean as _closest

__all__ = ["OPTIONS", "check_inputs", "check_options"]

#: Every option ``odeint`` understands, with what it does (``None`` = the default applies).
OPTIONS: dict[str, str] = {
    "step_size": "fixed grid: largest step; each output interval gets ceil(span/h) equal steps",
    "steps": "fixed grid: this many equal steps per output interval (no host read of tensor t)",
    "first_step": "adaptive: initial step (default: Hairer's initial step selection)",
    "safety": "adaptive: safety factor of the controller (default 0.9)",
    "ifactor": "adaptive: largest growth factor of the step (default 10)",
    "dfactor": "adaptive: smallest shrink factor after a rejected step (default 0.2)",
    "pcoeff": "adaptive: proportional coefficient k_P of the PI controller (default 0.2; 0 = I)",
    "icoeff": "adaptive: integral coefficient k_I of the PI controller (default 0.65)",
    "max_step": "adaptive: largest step (default inf)",
    "max_num_steps": "adaptive: most steps (accepted + rejected) before RuntimeError",
    "interp": "adaptive: outputs between steps, 'auto' (see module doc), 'hermite' or 'clip'",
    "per_sample": "adaptive: True = one step size per sample of dim 0 (torchode semantics)",
    "adjoint": "True = gradients by the backsolve adjoint (func an nn.Module; odeattn.solve._adjoint)",
    "implicit": "implicit tableaux: stage solver, 'newton' (default) or 'fixed_point'",
    "max_iter": "implicit tableaux: most stage-solver iterations per step",
}


_ADAPTIVE_ONLY = (
    "first_step",
    "safety",
    "ifactor",
    "dfactor",
    "pcoeff",
    "icoeff",
    "max_step",
    "max_num_steps",
    "interp",
    "per_sample",
)


def _positive(
    opts: Mapping[str, Any],
    key: str,
    *,
    integer: bool = False,
    upper: float | None = None,
    lower_incl: float | None = None,
) -> None:
    if key not in opts:
        return
    v = opts[key]
    ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
    if (
        isinstance(v, bool)
        or not ok_type
        or not (v > 0 if lower_incl is None else v >= lower_incl)
        or (upper is not None and v > upper)
        or (not integer and math.isnan(v))
    ):
        rng = (
            f"in [{lower_incl}, {upper}]"
            if lower_incl is not None
            else (f"in (0, {upper}]" if upper is not None else "> 0")
        )
        kind = "an int" if integer else "a number"
        raise ValueError(f"`options[{key!r}]` must be {kind} {rng}, but got {key}={v!r}")


def check_options(options: Mapping[str, Any] | None, adaptive: bool, implicit: bool) -> dict:
    opts = dict(options or {})
    for key in opts:
        if key not in OPTIONS:
            raise ValueError(
                f"unknown option {key!r} for odeattn.odeint{_closest(key, list(OPTIONS))} "
                f"valid options: {', '.join(OPTIONS)}"
            )
    if not adaptive:
        extra = [k for k in _ADAPTIVE_ONLY if k in opts]
        if extra:
            raise ValueError(
                f"option {extra[0]!r} only applies to adaptive solves, but "
                f"`step_size` or `steps` was given (a fixed grid); remove one of them"
            )
    if "step_size" in opts and "steps" in opts:
        raise ValueError(
            "options 'step_size' and 'steps' both set the fixed grid; give one of them"
        )
    if not implicit:
        extra = [k for k in ("implicit", "max_iter") if k in opts]
        if extra:
            raise ValueError(f"option {extra[0]!r} only applies to implicit tableaux; drop it")
    for key in ("step_size", "first_step", "ifactor", "max_step"):
        _positive(opts, key)
    _positive(opts, "safety", upper=1.0)
    _positive(opts, "dfactor", upper=1.0)
    _positive(opts, "pcoeff", lower_incl=0.0, upper=1.0)
    _positive(opts, "icoeff", upper=1.0)
    _positive(opts, "max_num_steps", integer=True)
    _positive(opts, "max_iter", integer=True)
    _positive(opts, "steps", integer=True)
    if opts.get("ifactor", 10.0) < 1.0:
        raise ValueError(f"`options['ifactor']` must be >= 1, but got ifactor={opts['ifactor']!r}")
    for key in ("per_sample", "adjoint"):
        if not isinstance(opts.get(key, False), bool):
            raise ValueError(f"`options[{key!r}]` must be a bool, but got {opts[key]!r}")
    for key, valid in (
        ("interp", ("auto", "hermite", "clip")),
        ("implicit", ("newton", "fixed_point")),
    ):
        if key in opts and opts[key] not in valid:
            raise ValueError(f"`options[{key!r}]` must be one of {valid}, but got {opts[key]!r}")
    return opts


def check_inputs(
    y0: Tensor, t: Tensor | Sequence[float], rtol: float, atol: float, read: bool = True
) -> tuple[Tensor, list[float] | None]:
    """Output times as a float64 tensor on y0's device, and as floats (``None`` if not ``read``)."""
    if not isinstance(y0, Tensor) or not y0.is_floating_point():
        raise TypeError(
            f"`y0` must be a floating-point tensor (concatenate several states into one), "
            f"but got {type(y0).__name__}"
            + (f" of dtype {y0.dtype}" if isinstance(y0, Tensor) else "")
        )
    for name, v in (("rtol", rtol), ("atol", atol)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
            raise ValueError(f"`{name}` must be a number >= 0, but got {name}={v!r}")
    if rtol == 0 and atol == 0:
        raise ValueError("`rtol` and `atol` cannot both be 0; e.g. rtol=1e-7, atol=1e-9")
    if isinstance(t, Tensor):
        if t.dim() != 1 or t.numel() < 1:
            raise ValueError(
                f"`t` must be a 1-D tensor of output times, but got shape {tuple(t.shape)}"
            )
        tt = t.to(dtype=torch.float64)
        if not read:  # options["steps"] inside torch.compile: values stay on the device
            return tt.to(y0.device), None
        times = t.detach().tolist()  # the one host read of the output times
    else:
        times = [float(v) for v in t]
        if not times:
            raise ValueError("`t` must hold at least one output time, but got an empty sequence")
        tt = torch.tensor(times, dtype=torch.float64, device=y0.device)
    d = [b - a for a, b in itertools.pairwise(times)]
    if not (all(x > 0 for x in d) or all(x < 0 for x in d)) or not all(map(math.isfinite, times)):
        raise ValueError(
            f"`t` must be finite and strictly increasing or strictly decreasing, "
            f"but got t={times[:6]}{'...' if len(times) > 6 else ''}"
        )
    return tt.to(y0.device), times
