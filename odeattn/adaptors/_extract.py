"""Extraction, part ① of an adaptor (DIA paper Fig. 1/3): summarise a feature map.

Channel extractors map (B, C, H, W) to descriptors (B, C, K):

    gap      K=1  mean over H·W (SE, ECA, DIA)
    avgmax   K=2  [mean, max] over H·W (CBAM channel gate)
    style    K=2  [mean, sqrt(var + 1e-5)] with the unbiased variance (SRM "style pooling")
    dct      K=1  y_c = Σ_{h,w} x_c[h, w] · B_{u_c}(h) B_{v_c}(w): FcaNet's multi-spectral pooling,
                  channels split into 16 groups, one "top16" frequency (u, v) per group on a 7×7
                  grid scaled by dct_size // 7; the input is adaptively average-pooled to
                  dct_size × dct_size first when it differs (as FcaNet does);
                  B_f(p) = cos(π f (p + ½) / N) / √N, times √2 when f > 0
    pyramid  K=Σ l²  adaptive average pools of size l × l for l in levels (SPA: 1, 2, 4 → 21)

Spatial extractors keep positions: ``none`` returns the map itself (SGE); ``channel_pool`` returns
[max over C, mean over C] → (B, 2, H, W) (CBAM spatial gate).

``linear`` marks extractors E with E(a + b) = E(a) + E(b), which lets the adaptor pool x_t and Φ
once and add descriptors instead of materialising x_{t+1} = x_t + Φ.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FCA_TOP16_U", "FCA_TOP16_V", "build_extractor", "dct_filters", "gap"]


def gap(x: Tensor) -> Tensor:
    """Global average pool (B, C, H, W) -> (B, C) as sum · (1/HW): the backward of a sum is a
    broadcast view, so no (B, C, H, W) gradient is materialised (``mean``'s backward divides)."""
    return x.sum((2, 3)) * (1.0 / (x.shape[2] * x.shape[3]))


FCA_TOP16_U = (0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2)
FCA_TOP16_V = (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2)


class _GAP(nn.Module):
    descriptors, linear, spatial = 1, True, False

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, 1)
        return gap(x).unsqueeze(-1)


class _AvgMax(nn.Module):
    descriptors, linear, spatial = 2, False, False

    def forward(self, x: Tensor) -> Tensor:  # (B, C, 2)
        return torch.stack((x.mean((2, 3)), x.amax((2, 3))), dim=-1)


class _Style(nn.Module):
    descriptors, linear, spatial = 2, False, False

    def forward(self, x: Tensor) -> Tensor:  # (B, C, 2)
        flat = x.flatten(2)  # (B, C, H·W)
        std = (flat.var(-1) + 1e-5).sqrt()  # unbiased, as the official SRM
        return torch.stack((flat.mean(-1), std), dim=-1)


def dct_filters(channels: int, size: int) -> Tensor:
    """FcaNet's fixed 2-D DCT filters (channels, size, size) for the top16 frequencies."""
    if channels % 16:
        raise ValueError(
            f"`channels` must be divisible by 16 for the 'dct' extractor (FcaNet splits "
            f"channels into 16 frequency groups), but got channels={channels}"
        )
    scale = size // 7

    def basis(freq: int) -> Tensor:
        pos = torch.arange(size, dtype=torch.float64)
        b = torch.cos(math.pi * freq * (pos + 0.5) / size) / math.sqrt(size)
        return b * math.sqrt(2.0) if freq else b

    part = channels // 16
    filt = torch.empty(channels, size, size, dtype=torch.float64)
    for i, (u, v) in enumerate(zip(FCA_TOP16_U, FCA_TOP16_V)):
        filt[i * part : (i + 1) * part] = torch.outer(basis(u * scale), basis(v * scale))
    return filt.float()


class _DCT(nn.Module):
    descriptors, linear, spatial = 1, True, False

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("filters", dct_filters(channels, size), persistent=False)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, 1)
        if x.shape[-2:] != (self.size, self.size):
            x = F.adaptive_avg_pool2d(x, self.size)
        return (x * self.filters.to(x.dtype)).sum((2, 3)).unsqueeze(-1)


class _Pyramid(nn.Module):
    linear, spatial = True, False

    def __init__(self, levels: tuple[int, ...]) -> None:
        super().__init__()
        self.levels = tuple(levels)
        self.descriptors = sum(n * n for n in self.levels)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, Σ l²)
        return torch.cat([F.adaptive_avg_pool2d(x, n).flatten(2) for n in self.levels], dim=-1)


class _NoExtract(nn.Module):
    descriptors, linear, spatial = 0, True, True

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        return x


class _ChannelPool(nn.Module):
    descriptors, linear, spatial = 2, False, True

    def forward(self, x: Tensor) -> Tensor:  # (B, 2, H, W): [max_c, mean_c] as CBAM
        return torch.cat((x.amax(1, keepdim=True), x.mean(1, keepdim=True)), dim=1)


def build_extractor(name: str, channels: int, hp: dict) -> nn.Module:
    """The extractor module for a validated spec (see ``AdaptorSpec.resolved``)."""
    if name == "dct":
        return _DCT(channels, hp["dct_size"])
    if name == "pyramid":
        return _Pyramid(hp["levels"])
    return {
        "gap": _GAP,
        "avgmax": _AvgMax,
        "style": _Style,
        "none": _NoExtract,
        "channel_pool": _ChannelPool,
    }[name]()
