"""Processing, part ② of an adaptor: descriptors → logits (the gate follows).

Channel processors read descriptors d (B, C, K) and return logits (B, C, 1, 1):

    fc    SE bottleneck: Linear(C·K → C//r) → ReLU → Linear(C//r → C) with merge="concat"
          (SPA flattens its 21 pyramid cells), or the same MLP applied to each of the K
          descriptors and summed with merge="sum" (CBAM's shared MLP on avg and max).
    eca   Conv1d(K → 1, k, padding (k−1)//2, no bias) across the channel axis (ECA-Net); k=None
          is ECA's adaptive k = t if t odd else t + 1, t = int((log2 C + 1) / 2).
    cfc   channel-wise FC z_c = Σ_k W_ck d_ck (+ b_c), then a norm: "bn" (SRM), "iebn" (StepNet),
          "ie" (IEBN's gate without the batch statistics) or "none". With the pair
          (x_{t+1}, x_t) and GAP this is StepNet's per-channel grouped 1×1 conv over the pair
          (a 1×1 conv commutes with GAP, so pooling first gives the same numbers for less work).
    ie    the IE operator z_c = Σ_k w_ck d_ck + b_c, w = 0, b = −1 (IEBN / SEM / SPEM).

Spatial processors: ``spatial_conv`` (CBAM): Conv2d(M → 1, k, padding k//2, no bias) → BN(1,
eps 1e-5, momentum 0.01) on the pooled maps → (B, 1, H, W); ``sge`` (Spatial Group-wise Enhance):
per group g of C/G channels, the position-wise dot product with the group's mean vector,
standardised over H·W (std unbiased, + 1e-5), then a per-group affine (w = 0, b = 1) → (B, G, H, W)
logits whose gate is repeated over the group's channels.

BatchNorms live in a ModuleList with one entry per served block (DIA paper Sec. 7.3.2: BN inside a
stage-shared module is not shared); ``index`` picks the block's own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from odeattn._errors import unknown_name

from ._iebn import IEBatchNorm2d
from ._recurrent import DIACell

__all__ = ["PROCESSOR_NAMES", "build_processor", "eca_kernel_size"]


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA-Net's adaptive kernel size: t = int(|(log2 C + b) / γ|), made odd upwards."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


def _hidden(channels: int, reduction: int, what: str) -> int:
    hidden = channels // reduction
    if hidden < 1:
        raise ValueError(
            f"`reduction` must be <= channels for {what}, but got reduction={reduction}"
            f" with channels={channels} (C // r = 0 hidden units); lower `reduction`"
        )
    return hidden


class _FC(nn.Module):
    bounded = False

    def __init__(self, channels: int, k: int, hp: dict) -> None:
        super().__init__()
        self.merge = hp["merge"]
        n_in = channels * k if self.merge == "concat" else channels
        hidden = _hidden(channels, hp["reduction"], "processor 'fc'")
        self.fc1 = nn.Linear(n_in, hidden, bias=hp["bias"])
        self.fc2 = nn.Linear(hidden, channels, bias=hp["bias"])
        if hp["init"] == "zero_bias" and hp["bias"]:
            nn.init.zeros_(self.fc1.bias)
            nn.init.zeros_(self.fc2.bias)

    def forward(self, d: Tensor, index: int) -> Tensor:  # (B, C, K) -> (B, C, 1, 1)
        if self.merge == "concat":
            z = self.fc2(F.relu(self.fc1(d.flatten(1))))  # (B, C)
        else:
            z = self.fc2(F.relu(self.fc1(d.transpose(1, 2)))).sum(1)  # (B, K, C) -> (B, C)
        return z[:, :, None, None]


class _ECA(nn.Module):
    bounded = False

    def __init__(self, channels: int, k: int, hp: dict) -> None:
        super().__init__()
        size = hp["kernel_size"] or eca_kernel_size(channels)
        self.conv = nn.Conv1d(k, 1, size, padding=(size - 1) // 2, bias=False)

    def forward(self, d: Tensor, index: int) -> Tensor:  # (B, C, K) -> (B, C, 1, 1)
        return self.conv(d.transpose(1, 2)).transpose(1, 2).unsqueeze(-1)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "iebn":
        return IEBatchNorm2d(channels)
    return _IE(channels)


class _IE(nn.Module):
    """IEBN without the batch statistics: z · γ ⊙ σ(w ⊙ z + b) + β (init 1, 0, 0, −1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.ie_weight = nn.Parameter(torch.zeros(channels))
        self.ie_bias = nn.Parameter(torch.full((channels,), -1.0))

    def forward(self, z: Tensor) -> Tensor:  # (B, C, 1, 1)
        shape = (1, -1, 1, 1)
        gate = torch.sigmoid(z * self.ie_weight.view(shape) + self.ie_bias.view(shape))
        return z * gate * self.gamma.view(shape) + self.beta.view(shape)


class _ChannelFC(nn.Module):
    bounded = False

    def __init__(self, channels: int, k: int, hp: dict, n_norms: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, k))
        self.bias = nn.Parameter(torch.empty(channels)) if hp["bias"] else None
        init = hp["init"]
        if init == "he":  # the group's ResNet loop on a Conv2d(K·C, C, 1, groups=C): N(0, 2/C)
            nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / channels))
        else:  # "zero" (SRM cfc) and "ie" (w = 0)
            nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.constant_(self.bias, -1.0 if init == "ie" else 0.0)
        kind = hp["norm"]
        self.norms = (
            nn.ModuleList([_norm(kind, channels) for _ in range(n_norms)])
            if kind != "none"
            else None
        )

    def forward(self, d: Tensor, index: int) -> Tensor:  # (B, C, K) -> (B, C, 1, 1)
        z = (d * self.weight).sum(-1)
        if self.bias is not None:
            z = z + self.bias
        z = z[:, :, None, None]
        return z if self.norms is None else self.norms[index](z)


class _SpatialConv(nn.Module):
    bounded = False

    def __init__(self, maps: int, hp: dict, n_norms: int) -> None:
        super().__init__()
        size = hp["kernel_size"]
        self.conv = nn.Conv2d(maps, 1, size, padding=size // 2, bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out")  # CBAM's init loop
        self.norms = nn.ModuleList(
            [nn.BatchNorm2d(1, eps=1e-5, momentum=0.01) for _ in range(n_norms)]
        )
        for bn in self.norms:  # CBAM: BN weights inside the SpatialGate start at 0
            nn.init.zeros_(bn.weight)

    def forward(self, d: Tensor, index: int) -> Tensor:  # (B, M, H, W) -> (B, 1, H, W)
        return self.norms[index](self.conv(d))


class _SGE(nn.Module):
    bounded = False

    def __init__(self, channels: int, hp: dict) -> None:
        super().__init__()
        g = hp["groups"]
        if channels % g:
            raise ValueError(
                f"`groups` must divide channels for processor 'sge', but got groups={g}"
                f" with channels={channels}; pass e.g. groups={math.gcd(g, channels)}"
            )
        self.groups = g
        self.weight = nn.Parameter(torch.zeros(1, g, 1, 1))
        self.bias = nn.Parameter(torch.ones(1, g, 1, 1))

    def forward(self, d: Tensor, index: int) -> Tensor:  # (B, C, H, W) -> (B, G, H, W)
        b, c, h, w = d.shape
        x = d.reshape(b * self.groups, c // self.groups, h, w)
        t = (x * x.mean((2, 3), keepdim=True)).sum(1).reshape(b * self.groups, h * w)
        t = t - t.mean(1, keepdim=True)
        t = t / (t.std(1, keepdim=True) + 1e-5)
        return t.reshape(b, self.groups, h, w) * self.weight + self.bias

    def expand(self, dt: Tensor, channels: int) -> Tensor:  # (B, G, H, W) -> (B, C, H, W)
        b, g, h, w = dt.shape
        return dt.unsqueeze(2).expand(b, g, channels // g, h, w).reshape(b, channels, h, w)


_BUILDERS = {  # processor name -> (channels, k, hp, n_norms, gate) -> module
    "fc": lambda c, k, hp, n, gate: _FC(c, k, hp),
    "eca": lambda c, k, hp, n, gate: _ECA(c, k, hp),
    "cfc": lambda c, k, hp, n, gate: _ChannelFC(c, k, hp, n),
    "ie": lambda c, k, hp, n, gate: _ChannelFC(
        c, k, {"bias": True, "init": "ie", "norm": "none"}, n
    ),
    "spatial_conv": lambda c, k, hp, n, gate: _SpatialConv(k, hp, n),
    "sge": lambda c, k, hp, n, gate: _SGE(c, hp),
    "lstm": lambda c, k, hp, n, gate: DIACell(c, k, hp["reduction"], light=False, gate=gate),
    "lstm_light": lambda c, k, hp, n, gate: DIACell(c, k, hp["reduction"], light=True, gate=gate),
}
PROCESSOR_NAMES = tuple(_BUILDERS)


def build_processor(
    name: str, channels: int, k: int, hp: dict, n_norms: int, gate: str
) -> nn.Module:
    """The processor for a validated spec; ``k`` descriptors per channel (maps for spatial).

    An unknown ``name`` is a ValueError with a did-you-mean, never a silent default."""
    builder = _BUILDERS.get(name)
    if builder is None:
        raise unknown_name("processor", name, _BUILDERS)
    return builder(channels, k, hp, n_norms, gate)
