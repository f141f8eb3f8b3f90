"""Zero-cost proxies: score an untrained network on one batch; larger = predicted better (all).

One calling convention for any ``nn.Module``: ``proxy(model, x)`` or ``proxy(model, x, y)`` with
``x`` a float batch ``(B, ...)`` and ``y`` class indices ``(B,)``; each returns a Python float and
leaves the model's parameters, buffers (BN running statistics, ``num_batches_tracked``), ``.grad``
fields (None-ness included), every submodule's train/eval flag and the global CPU RNG as it found
them. "The weights" are the ``weight`` tensors of the ``Conv*d`` / ``ConvTranspose*d`` and
``nn.Linear`` modules that require grad (shared tensors counted once; biases and norms excluded).

* **naswot** (Mellor et al., "Neural Architecture Search without Training", ICML 2021), train
  mode: c_i ∈ {0,1}^{N_A} is the binary code 1[input of ReLU > 0] of input i over every unit of
  every ReLU applied in the forward pass, K[i,j] = N_A − Hamming(c_i, c_j) and
  ``score = log|det K|`` (slogdet, float64). "Every ReLU" is every call of ``torch.relu(_)``,
  ``Tensor.relu(_)``, ``F.relu(_)``, ``F.relu6`` and ``F.hardtanh(·, 0, ·)`` (so ``nn.ReLU``,
  ``nn.ReLU6`` and the ``.relu()`` that odeattn's blocks, adaptors and RKCNN use); sigmoid /
  tanh gates (SE, DIA) and other activations are not ReLU units and are not coded.
* **synflow** (Tanaka et al., NeurIPS 2020, as used by Abdelfattah et al., "Zero-Cost Proxies for
  Lightweight NAS", ICLR 2021): on a float64 deep copy with every ``_BatchNorm`` (odeattn's IEBN
  included) replaced by identity, in eval mode, every parameter replaced by |θ|, input
  ``1`` of shape ``(1, *x.shape[1:])``: R = Σ model(1), ``score = Σ_W Σ |W ⊙ ∂R/∂W|``.
* **grad_norm** (Abdelfattah et al. 2021): L = cross-entropy(model(x), y) (mean), train mode;
  ``score = Σ_W ‖∂L/∂W‖₂`` (Frobenius norm per weight tensor).
* **snip** (Lee et al., "SNIP", ICLR 2019): ``score = Σ_W Σ |W ⊙ ∂L/∂W|``, same loss.
* **jacob_cov** (Mellor et al. 2020, arXiv v1 of the paper above), train mode:
  J_i = ∂(Σ_k out_ik)/∂x_i flattened, C = corrcoef(J) (B×B), ``score = −Σ_λ [log(λ + 1e−5) +
  1/(λ + 1e−5)]`` over the eigenvalues λ of C (eigvalsh, float64; rounding below 0 is clipped).
  J is the gradient of Σ_{i,k} out_ik with respect to x, which is the per-sample J_i exactly when
  samples do not interact; with BatchNorm in train mode it also holds the cross-sample terms
  through the batch statistics (as in Abdelfattah et al.'s reference code). A sample with a
  constant J has no correlation: the score is then −inf (the worst). rank C ≤ min(B, D − 1) for
  inputs of D values, so B ≥ D puts eigenvalues at 0 whose 1e5 terms dominate: keep B < D.
* **params**: the number of trainable parameters (the baseline every proxy must beat, ZiCo).

:data:`PROXIES` maps each name to a :class:`ZeroCostProxy` with the uniform signature
``(model, x, y=None) -> float``; :func:`score` looks a name up (for YAML ``screen.metric``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.overrides import TorchFunctionMode

from odeattn._errors import unknown_name
from odeattn.proxies._basic import count_params
from odeattn.stiffness import as_found

__all__ = [
    "PROXIES",
    "RELU_FUNCTIONS",
    "ZeroCostProxy",
    "grad_norm",
    "jacob_cov",
    "naswot",
    "score",
    "snip",
    "synflow",
]

#: Calls whose input NASWOT codes as 1[input > 0] (``nn.ReLU`` calls ``F.relu``), and hardtanh(·, 0).
RELU_FUNCTIONS = frozenset(
    {torch.relu, torch.relu_, Tensor.relu, Tensor.relu_, F.relu, F.relu_, F.relu6}
)


def _check_x(x: Any, min_batch: int = 1) -> int:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2 or x.numel() == 0:
        what = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x)
        raise ValueError(f"`x` must be a non-empty float batch (B, ...), batch first; got a {what}")
    if x.shape[0] < min_batch:
        raise ValueError(
            f"this proxy compares inputs: it needs a batch of B >= {min_batch}, "
            f"but x has B = {x.shape[0]}"
        )
    return int(x.shape[0])


def _check_y(y: Any, batch: int) -> None:
    if (
        not isinstance(y, Tensor)
        or y.dtype == torch.bool
        or y.is_floating_point()
        or y.is_complex()
    ):
        raise ValueError(f"`y` must be an integer tensor of class indices, got {y!r:.80}")
    if tuple(y.shape) != (batch,):
        raise ValueError(f"`y` must have shape (B,) = ({batch},) to match x, got {tuple(y.shape)}")


def _check_out(out: Any, batch: int, classes: bool = False) -> Tensor:
    ok = isinstance(out, Tensor) and out.ndim >= 1 and out.shape[0] == batch
    if not ok or (classes and out.ndim != 2):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out)
        want = f"logits of shape ({batch}, C)" if classes else f"a tensor of shape ({batch}, ...)"
        raise ValueError(
            f"the model must return {want} for x of batch size {batch}, got {shape} "
            "(is x missing its batch dimension?)"
        )
    return out


@contextmanager
def _untouched(model: nn.Module) -> Iterator[None]:
    """Restore every module's mode and every buffer (``stiffness.as_found``), every ``.grad`` and
    the CPU RNG on exit."""
    grads = [(p, p.grad) for p in model.parameters()]
    try:
        with as_found(model), torch.random.fork_rng(devices=[]):
            yield
    finally:
        for p, g in grads:
            p.grad = g


def _weights(model: nn.Module) -> list[Tensor]:
    """The Conv / Linear weights that require grad, each tensor once, in module order."""
    seen: dict[int, Tensor] = {}
    for m in model.modules():
        w = getattr(m, "weight", None)
        if isinstance(m, _ConvNd | nn.Linear) and isinstance(w, Tensor) and w.requires_grad:
            seen.setdefault(id(w), w)
    if not seen:
        raise ValueError("the model has no Conv or Linear weight that requires grad to score")
    return list(seen.values())


class _ReluCodes(TorchFunctionMode):
    """Accumulates G = Σ_layers c cᵀ (B×B, float64) and N_A over every ReLU call in its scope."""

    def __init__(self, batch: int, device: torch.device) -> None:
        super().__init__()
        self.batch, self.units = batch, 0
        self.gram = torch.zeros(batch, batch, dtype=torch.float64, device=device)

    def __torch_function__(
        self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.hardtanh:  # nn.ReLU6 is hardtanh(x, 0, 6): a ReLU when min_val = 0
            relu = (args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)) == 0
        else:
            relu = func in RELU_FUNCTIONS
        if relu:
            pre = args[0] if args else kwargs["input"]  # read before an in-place ReLU writes
            if pre.ndim < 1 or pre.shape[0] != self.batch:
                raise ValueError(
                    f"a ReLU input of shape {tuple(pre.shape)} does not start with "
                    f"the batch dimension B = {self.batch}; NASWOT cannot code it"
                )
            code = (pre.detach() > 0).reshape(self.batch, -1).to(self.gram)  # (B, n) float64
            self.gram += code @ code.T  # (B, B): units on in both i and j
            self.units += code.shape[1]
        return func(*args, **kwargs)


def naswot(model: nn.Module, x: Tensor) -> float:
    """NASWOT: log|det K|, K[i,j] = N_A − Hamming(c_i, c_j) over the ReLU codes (train mode)."""
    batch = _check_x(x, min_batch=2)
    codes = _ReluCodes(batch, x.device)
    with _untouched(model), torch.no_grad():
        model.train()
        with codes:
            out = model(x)
        _check_out(out, batch)
    if codes.units == 0:
        raise ValueError(
            "NASWOT needs ReLU units, but the forward pass applied no ReLU "
            f"(coded: relu, relu_, relu6, hardtanh(·, 0)); model {type(model).__name__}"
        )
    g, n = codes.gram, codes.units
    on = g.diagonal()  # (B,) units on for input i
    # Hamming(i, j) = on_i + on_j − 2 G_ij, so K = N_A − on_i − on_j + 2 G
    k = n - on[:, None] - on[None, :] + 2 * g  # (B, B)
    return float(torch.linalg.slogdet(k).logabsdet)


def _strip_bn(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, _BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _strip_bn(child)


def synflow(model: nn.Module, x: Tensor) -> float:
    """Synflow: Σ_W Σ |W ⊙ ∂R/∂W|, R = Σ net(1) on a float64 |θ| copy without BatchNorm (eval)."""
    _check_x(x)
    net = copy.deepcopy(model)  # the model itself is never run
    _strip_bn(net)
    net.double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = _weights(net)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)  # (1, ...)
    with torch.enable_grad():
        r = _check_out(net(ones), 1).sum()
        grads = torch.autograd.grad(r, weights, allow_unused=True)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads) if g is not None))


def _loss_grads(model: nn.Module, x: Tensor, y: Tensor) -> list[tuple[Tensor, Tensor]]:
    """(W, ∂L/∂W) for the weights, L = mean cross-entropy on (x, y) in train mode."""
    batch = _check_x(x)
    _check_y(y, batch)
    weights = _weights(model)
    with _untouched(model), torch.enable_grad():
        model.train()
        logits = _check_out(model(x), batch, classes=True)  # (B, classes)
        if int(y.min()) < 0 or int(y.max()) >= logits.shape[1]:
            raise ValueError(
                f"labels must lie in [0, {logits.shape[1]}), got [{int(y.min())}, {int(y.max())}]"
            )
        loss = F.cross_entropy(logits, y)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)  # .grad untouched
    return [(w.detach(), g) for w, g in zip(weights, grads) if g is not None]


def grad_norm(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """grad_norm: Σ_W ‖∂L/∂W‖₂ with L the cross-entropy on (x, y) in train mode."""
    return float(sum(g.double().norm() for _, g in _loss_grads(model, x, y)))


def snip(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """SNIP: Σ_W Σ |W ⊙ ∂L/∂W| with L the cross-entropy on (x, y) in train mode."""
    return float(sum((w.double() * g.double()).abs().sum() for w, g in _loss_grads(model, x, y)))


def jacob_cov(model: nn.Module, x: Tensor) -> float:
    """jacob_cov: −Σ_λ [log(λ + 1e−5) + 1/(λ + 1e−5)], λ the eigenvalues of corrcoef(J)."""
    batch = _check_x(x, min_batch=2)
    with _untouched(model), torch.enable_grad():
        model.train()
        xr = x.detach().clone().requires_grad_(True)  # (B, ...)
        out = _check_out(model(xr), batch)
        (jac,) = torch.autograd.grad(out.sum(), xr)  # (B, ...): row i = J_i
    corr = torch.corrcoef(jac.reshape(batch, -1).double())  # (B, B)
    if not bool(torch.isfinite(corr).all()):
        return -math.inf
    lam = torch.linalg.eigvalsh(corr).clamp_min(0.0) + 1e-5  # (B,)
    return float(-(lam.log() + lam.reciprocal()).sum())


def _params(model: nn.Module, x: Tensor) -> float:
    _check_x(x)
    return float(count_params(model))  # trainable, shared tensors once


@dataclass(frozen=True)
class ZeroCostProxy:
    """A table entry: ``proxy(model, x, y=None) -> float``; larger = predicted better."""

    name: str
    fn: Callable[..., float]
    needs_labels: bool = False
    direction: str = "maximize"

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor | None = None) -> float:
        if self.needs_labels:
            if y is None:
                raise ValueError(
                    f"proxy {self.name!r} needs labels y (class indices of shape (B,))"
                )
            return float(self.fn(model, x, y))
        return float(self.fn(model, x))


#: name -> proxy, the names YAML studies use (``screen.metric``, objectives).
PROXIES: dict[str, ZeroCostProxy] = {
    "naswot": ZeroCostProxy("naswot", naswot),
    "synflow": ZeroCostProxy("synflow", synflow),
    "grad_norm": ZeroCostProxy("grad_norm", grad_norm, needs_labels=True),
    "snip": ZeroCostProxy("snip", snip, needs_labels=True),
    "jacob_cov": ZeroCostProxy("jacob_cov", jacob_cov),
    "params": ZeroCostProxy("params", _params),
}


def score(name: str, model: nn.Module, x: Tensor, y: Tensor | None = None) -> float:
    """Score ``model`` on one batch with the proxy called ``name`` (see :data:`PROXIES`)."""
    if name not in PROXIES:
        raise unknown_name("zero-cost proxy", name, PROXIES)
    return PROXIES[name](model, x, y)
