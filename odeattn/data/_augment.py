"""On-device batch augmentation and normalisation of uint8 image batches.

The whole batch is transformed with a handful of tensor ops on the device that holds it: no
per-image Python, no DataLoader workers. For a batch ``x`` (B, C, H, W) uint8:

- random crop with zero padding ``p`` (torchvision ``RandomCrop(H, padding=p)``): the image is
  placed in a zero canvas of size (H + 2p, W + 2p) and a window at a uniform offset
  ``(oy, ox) ∈ {0..2p}²`` is read back, per image, with one gather;
- horizontal flip with probability 1/2 (``RandomHorizontalFlip``): folded into the same gather by
  reading the window's columns in reverse;
- normalisation ``(x / 255 − mean) / std`` per channel as one fused multiply-add
  ``x · scale + shift`` with ``scale = 1 / (255 std)``, ``shift = −mean / std``.

Crop and flip act on uint8 before normalisation, so padded pixels are 0 (black) exactly as in
the papers' torchvision pipelines.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["BatchTransform"]


class BatchTransform:
    """Normalise (and optionally crop/flip) uint8 batches on their device.

    Args:
        mean, std: per-channel statistics in [0, 1] units (as in ``transforms.Normalize``).
        crop_pad: zero padding of the random crop; 0 disables cropping.
        flip: random horizontal flip.
        device: where batches live; the constants are created there once.
        channels_last: return batches in ``torch.channels_last`` memory format.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        crop_pad: int = 0,
        flip: bool = False,
        device: torch.device | str = "cpu",
        channels_last: bool = False,
    ) -> None:
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(
                f"`mean`/`std` must have equal length and std > 0, but got {mean=}, {std=}"
            )
        if crop_pad < 0:
            raise ValueError(f"`crop_pad` must be >= 0, but got crop_pad={crop_pad}")
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)  # (1, C, 1, 1)
        self.shift = -mean_t / std_t  # (1, C, 1, 1)
        self.crop_pad, self.flip = int(crop_pad), bool(flip)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def normalize(self, x: Tensor) -> Tensor:
        """uint8 (B, C, H, W) -> float32 normalised (B, C, H, W)."""
        out = torch.addcmul(self.shift, x.float(), self.scale)  # (B, C, H, W)
        return out.contiguous(memory_format=self.memory_format)

    def augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Random crop + flip (as configured) then normalise; uint8 in, float32 out."""
        if self.crop_pad or self.flip:
            x = self._crop_flip(x, generator)
        return self.normalize(x)

    def _crop_flip(self, x: Tensor, g: torch.Generator) -> Tensor:
        b, c, h, w = x.shape
        p, dev = self.crop_pad, x.device
        if p:
            canvas = x.new_zeros(b, c, h + 2 * p, w + 2 * p)  # (B, C, H+2p, W+2p)
            canvas[:, :, p : p + h, p : p + w] = x
            oy = torch.randint(0, 2 * p + 1, (b, 1), generator=g, device=dev)
            ox = torch.randint(0, 2 * p + 1, (b, 1), generator=g, device=dev)
        else:
            canvas = x
            oy = ox = torch.zeros(b, 1, dtype=torch.long, device=dev)
        rows = oy + torch.arange(h, device=dev)  # (B, H)
        cols = ox + torch.arange(w, device=dev)  # (B, W)
        if self.flip:
            flipped = torch.rand(b, 1, generator=g, device=dev) < 0.5
            cols = torch.where(flipped, cols.flip(1), cols)
        bi = torch.arange(b, device=dev).view(b, 1, 1, 1)
        ci = torch.arange(c, device=dev).view(1, c, 1, 1)
        return canvas[bi, ci, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]  # (B, C, H, W)
