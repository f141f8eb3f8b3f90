"""A fused CPU kernel for recording a plain residual step: ``y = x_t + Φ`` and ‖x_t‖, ‖Φ‖ per sample.

The stiffness recorder (StepNet Eq. 4, design.md §4) needs two per-sample 2-norms per block.
Taken as separate reductions they are two extra passes over full-width feature maps, ≈ 9 % of a
ResNet-164 CPU forward. The residual add already reads x_t and Φ; this kernel computes the add and
both sums of squares in that one pass, so recording costs almost no memory traffic.

``y`` is bit-identical to ``x_t + Φ`` (one IEEE add per element, contraction off). Sums of
squares run in the input precision over blocks of 1024 elements and in float64 across blocks.
Blocks with a channel step (SE, StepNet: ``y = x_t + Δt ⊙ Φ``, Δt (B, C, 1, 1)):
:func:`addcmul_with_norms` forms y as ``fma(Δt, Φ, x_t)`` with ‖x_t‖, ‖Δt ⊙ Φ‖ =
(Σ_c Δt_c² Σ Φ_c²)^½ and ‖Φ‖, used only if a self-check at first use shows this equals the torch
build's ``addcmul`` bit for bit; else (and under autograd) :func:`step_norms` reads x_t and Φ once
for the norms, instead of the torch path's square, sum and norm passes.

The kernels (``odeattn/_kernels.c``) are C compiled once with the system compiler (``$CC``, else ``cc``) and OpenMP into a
per-user cache (``$ODEATTN_CACHE_DIR``, else ``$XDG_CACHE_HOME/odeattn``, else
``~/.cache/odeattn``), keyed by source, flags and CPU; it joins the process's OpenMP runtime (the
one torch loaded). It is loaded with ctypes (no Python headers, < 1 s to build). Without a
working compiler, or with ``ODEATTN_KERNELS=0``, :func:`add_with_norms` returns ``None`` and the
recorder uses separate torch reductions: same results, slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["add_with_norms", "addcmul_with_norms", "load", "step_norms"]

log = logging.getLogger("odeattn")

_SOURCE_FILE = Path(__file__).parent / "_kernels.c"

_FLAGS = ["-O3", "-march=native", "-fopenmp", "-ffp-contract=off", "-fPIC", "-shared"]
_MIN_PARALLEL = 1 << 15  # elements below which one thread is faster than an OpenMP fork

_lib: ctypes.CDLL | None = None
_tried = False


def _cache_dir() -> Path:
    if os.environ.get("ODEATTN_CACHE_DIR"):
        return Path(os.environ["ODEATTN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "odeattn"


def _cpu_key() -> str:
    """The CPU's identity (``-march=native`` binaries must not move between CPU models)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        wanted = [ln for ln in lines if ln.startswith(("model name", "flags"))][:2]
    except OSError:
        wanted = []
    return "\n".join([platform.machine(), platform.processor(), *wanted])


def _build(cc: str, source: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src, lib = Path(tmp) / "kernel.c", Path(tmp) / target.name
        src.write_text(source)
        subprocess.run(
            [cc, *_FLAGS, str(src), "-o", str(lib), "-lm"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        os.replace(lib, target)  # atomic: concurrent builders never see a partial file


_I64, _PTR = ctypes.c_int64, ctypes.c_void_p
_SIGNATURES = {  # argument types of the three kernels (each in an f32 and an f64 build)
    "add_norms": [_PTR] * 4 + [_I64] * 3 + [ctypes.c_int],
    "step_norms": [_PTR] * 4 + [_I64] * 3 + [ctypes.c_int] + [_I64] * 2 + [ctypes.c_int],
    "addcmul_norms": [_PTR] * 5 + [_I64] * 3 + [ctypes.c_int] + [_I64] * 2 + [ctypes.c_int],
}


def _declare(lib: ctypes.CDLL) -> None:
    """Set the C signatures (int return, argument types) of every kernel in ``lib``."""
    for kernel, argtypes in _SIGNATURES.items():
        for dtype in ("f32", "f64"):
            fn = getattr(lib, f"odeattn_{kernel}_{dtype}")
            fn.restype = ctypes.c_int
            fn.argtypes = argtypes


def load() -> ctypes.CDLL | None:
    """The compiled kernel library, building it on first use; ``None`` when unavailable."""
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    if os.environ.get("ODEATTN_KERNELS", "1") == "0":
        return None
    cc = shutil.which(os.environ.get("CC") or "cc")
    if cc is None:
        log.info("odeattn: no C compiler found; recording uses torch reductions")
        return None
    try:
        source = _SOURCE_FILE.read_text()
        key = hashlib.sha256("\0".join([source, " ".join(_FLAGS), cc, _cpu_key()]).encode())
        target = _cache_dir() / f"add_norms-{key.hexdigest()[:16]}.so"
        if not target.exists():
            _build(cc, source, target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", "") or e
        log.warning(
            "odeattn: could not build the fused recording kernel (%s); recording uses "
            "torch reductions (set ODEATTN_KERNELS=0 to skip the attempt)",
            detail,
        )
        return None
    _declare(lib)
    _lib = lib
    return lib


def _fusable(x: Tensor, phi: Tensor, *, autograd: bool = True) -> bool:
    """CPU, float32/64, same shape and strides, each sample one contiguous block, and (when the
    kernel writes a result autograd must see) no input needing grad."""
    if x.device.type != "cpu" or phi.device.type != "cpu" or x.dtype != phi.dtype:
        return False
    if x.dtype not in (torch.float32, torch.float64) or x.ndim < 2 or x.numel() == 0:
        return False
    if x.shape != phi.shape or x.stride() != phi.stride():
        return False
    if autograd and torch.is_grad_enabled() and (x.requires_grad or phi.requires_grad):
        return False
    if torch.compiler.is_compiling():
        return False
    return x.is_contiguous() or (x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last))


def add_with_norms(x: Tensor, phi: Tensor) -> tuple[Tensor, Tensor] | None:
    """``(x + Φ, norms)`` with ``norms`` (B, 2) float64 = (‖x_b‖, ‖Φ_b‖), or ``None`` (fall back)."""
    if not _fusable(x, phi):
        return None
    lib = load()
    if lib is None:
        return None
    B = x.shape[0]
    n = x.numel() // B
    threads = torch.get_num_threads() if x.numel() >= _MIN_PARALLEL else 1
    K = max(1, -(-2 * threads // B))  # split samples when the batch is smaller than the threads
    y = torch.empty_like(x)  # keeps channels_last strides, as x + Φ does
    out = torch.empty(B, 2, dtype=torch.float64)
    fn = lib.odeattn_add_norms_f32 if x.dtype == torch.float32 else lib.odeattn_add_norms_f64
    if fn(x.data_ptr(), phi.data_ptr(), y.data_ptr(), out.data_ptr(), B, n, K, threads) != 0:
        return None
    return y, out


def _channel_step(x: Tensor, dt: Tensor) -> tuple[Tensor, int, int] | None:
    """Δt (B | 1, C | 1, 1, 1) as a contiguous (B|1, C|1) tensor of x's dtype with its sample and
    channel strides (0 where broadcast), or ``None`` for any other shape."""
    B, C = x.shape[:2]
    if (
        dt.ndim != 4
        or dt.shape[0] not in (1, B)
        or dt.shape[1] not in (1, C)
        or dt.shape[2:] != (1, 1)
    ):
        return None
    d = dt.detach().to(x.dtype).reshape(dt.shape[0], dt.shape[1]).contiguous()
    return d, (d.stride(0) if d.shape[0] > 1 else 0), (d.stride(1) if d.shape[1] > 1 else 0)


def step_norms(x: Tensor, phi: Tensor, dt: Tensor) -> Tensor | None:
    """(B, 3) float64 ‖x_b‖, ‖Δt ⊙ Φ_b‖, ‖Φ_b‖ for a step Δt of shape (B | 1, C | 1, 1, 1),
    reading x and Φ once (read-only: any grad mode); ``None`` where it does not apply."""
    if x.ndim != 4 or not _fusable(x, phi, autograd=False):
        return None
    step = _channel_step(x, dt)
    lib = load() if step is not None else None
    if lib is None:
        return None
    (d, dsb, dsc), (B, C, H, W) = step, x.shape
    threads = torch.get_num_threads() if x.numel() >= _MIN_PARALLEL else 1
    out = torch.empty(B, 3, dtype=torch.float64)
    fn = lib.odeattn_step_norms_f32 if x.dtype == torch.float32 else lib.odeattn_step_norms_f64
    last = int(not x.is_contiguous())  # else channels_last (checked by _fusable)
    if (
        fn(
            x.data_ptr(),
            phi.data_ptr(),
            d.data_ptr(),
            out.data_ptr(),
            B,
            C,
            H * W,
            last,
            dsb,
            dsc,
            threads,
        )
        != 0
    ):
        return None
    return out


_ADDCMUL_OK: dict[torch.dtype, bool] = {}


def _addcmul_matches_torch(lib: ctypes.CDLL, dtype: torch.dtype) -> bool:
    """Whether the kernel's fma reproduces this torch build's ``addcmul`` bit for bit (checked
    once per dtype on random data with vector tails, both layouts, both Δt shapes)."""
    if dtype not in _ADDCMUL_OK:
        g = torch.Generator().manual_seed(0)
        ok = True
        for last, dshape in ((False, (3, 5, 1, 1)), (True, (3, 5, 1, 1)), (True, (1, 5, 1, 1))):
            x, p = (torch.randn(3, 5, 7, 9, generator=g, dtype=dtype) for _ in range(2))
            if last:
                x, p = (t.contiguous(memory_format=torch.channels_last) for t in (x, p))
            dt = torch.rand(dshape, generator=g, dtype=dtype)
            got = _addcmul_call(lib, x, dt, p)
            ok = ok and got is not None and torch.equal(got[0], torch.addcmul(x, dt, p))
        _ADDCMUL_OK[dtype] = ok
        if not ok:
            log.info("odeattn: torch.addcmul is not a plain fma on this build; recording keeps it")
    return _ADDCMUL_OK[dtype]


def _addcmul_call(
    lib: ctypes.CDLL, x: Tensor, dt: Tensor, phi: Tensor
) -> tuple[Tensor, Tensor] | None:
    step = _channel_step(x, dt)
    if step is None:
        return None
    (d, dsb, dsc), (B, C, H, W) = step, x.shape
    threads = torch.get_num_threads() if x.numel() >= _MIN_PARALLEL else 1
    y, out = torch.empty_like(x), torch.empty(B, 3, dtype=torch.float64)
    fn = (
        lib.odeattn_addcmul_norms_f32 if x.dtype == torch.float32 else lib.odeattn_addcmul_norms_f64
    )
    last = int(not x.is_contiguous())
    if (
        fn(
            x.data_ptr(),
            phi.data_ptr(),
            d.data_ptr(),
            y.data_ptr(),
            out.data_ptr(),
            B,
            C,
            H * W,
            last,
            dsb,
            dsc,
            threads,
        )
        != 0
    ):
        return None
    return y, out


def addcmul_with_norms(x: Tensor, dt: Tensor, phi: Tensor) -> tuple[Tensor, Tensor] | None:
    """``(torch.addcmul(x, Δt, Φ), norms)`` with norms (B, 3) as :func:`step_norms`, in one pass;
    ``None`` (fall back) off CPU, under autograd, for other Δt shapes or dtypes, or when this
    torch build's ``addcmul`` is not reproduced bit for bit."""
    if x.ndim != 4 or not _fusable(x, phi) or dt.dtype != x.dtype or dt.device != x.device:
        return None
    if torch.is_grad_enabled() and dt.requires_grad:
        return None
    lib = load()
    if lib is None or not _addcmul_matches_torch(lib, x.dtype):
        return None
    return _addcmul_call(lib, x, dt, phi)
