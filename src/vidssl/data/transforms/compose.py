"""Clip-consistent video transforms (public entry point).

Every random parameter is drawn once per clip::

    params = transform.sample(rng, height, width)
    out = transform.apply(clip_uint8_THWC, params)      # -> C×T×H×W
    out = transform(clip, rng)                          # = apply(clip, sample(rng, H, W))

so an RGB clip and its flow clip share a draw by applying the same ``params`` to both
(`Compose.apply_pair`; ViCC/CoCLR cross-stream augmentation). This module defines the format steps
(`ToFloat`, `Normalize`, `ResidualClip`) and re-exports the rest:

- geometric (`vidssl.data.transforms.geometric`): `RandomResizedCrop`, `Resize`, `CenterCrop`,
  `CornerCrop`, `RandomCrop`, `HorizontalFlip`, `MultiCrop` (five/ten crop);
- photometric (`vidssl.data.transforms.color`): `ColorJitter`, `RandomGrayscale`, `GaussianBlur`;
- `Compose` (`vidssl.data.transforms.core`);
- batched on-device augmentation: `vidssl.data.transforms.batched.BatchedVideoAugment`;
- reference recipes: `vidssl.data.transforms.presets`.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from vidssl.data.transforms import ops
from vidssl.data.transforms.color import ColorJitter, GaussianBlur, RandomGrayscale
from vidssl.data.transforms.core import ClipTransform, Compose
from vidssl.data.transforms.geometric import (
    FIVE_CROP_POSITIONS,
    CenterCrop,
    CornerCrop,
    CropBox,
    HorizontalFlip,
    MultiCrop,
    RandomCrop,
    RandomResizedCrop,
    Resize,
)
from vidssl.data.transforms.ops import NORMALIZATIONS
from vidssl.errors import ConfigError

__all__ = [
    "FIVE_CROP_POSITIONS",
    "NORMALIZATIONS",
    "CenterCrop",
    "ClipTransform",
    "ColorJitter",
    "Compose",
    "CornerCrop",
    "CropBox",
    "GaussianBlur",
    "HorizontalFlip",
    "MultiCrop",
    "Normalize",
    "RandomCrop",
    "RandomGrayscale",
    "RandomResizedCrop",
    "ResidualClip",
    "Resize",
    "ToFloat",
]


class ToFloat(ClipTransform):
    """uint8 ``[0, 255]`` → float32 ``[0, 1]`` (``ToTensor``); float input passes through."""

    kind: ClassVar[str] = "format"
    name: ClassVar[str] = "to_float"

    def apply_cthw(self, x: torch.Tensor, params: None = None) -> torch.Tensor:
        """Converts the clip to float ``[0, 1]``."""
        return ops.to_float(x)


class Normalize(ClipTransform):
    """Per-channel ``(x − mean) / std`` on float ``[0, 1]`` values (uint8 is converted first).

    Args:
        stats: a preset name — ``"imagenet"`` (0.485, 0.456, 0.406)/(0.229, 0.224, 0.225), used by
            CoCLR, ViCC and PCL for RGB *and* flow; ``"kinetics"`` 0.45/0.225; ``"none"`` (only
            the conversion to float) — or an explicit ``(mean, std)`` pair of per-channel tuples.
    """

    kind: ClassVar[str] = "format"
    name: ClassVar[str] = "normalize"

    def __init__(
        self, stats: str | tuple[tuple[float, ...], tuple[float, ...]] = "imagenet"
    ) -> None:
        self.stats = ops.normalization_stats(stats) if isinstance(stats, str) else stats
        if self.stats is not None and len(self.stats[0]) != len(self.stats[1]):
            raise ConfigError(f"normalisation mean and std differ in length: {stats!r}")

    def apply_cthw(self, x: torch.Tensor, params: None = None) -> torch.Tensor:
        """Normalises the clip (converting uint8 to float first)."""
        x = ops.to_float(x)
        if self.stats is None:
            return x
        return ops.normalize(x, *self.stats)


class ResidualClip(ClipTransform):
    """Frame differences along time (PCL/VCP/IIC "residual clips"); see `transforms_ops.residual`.

    ``mode="pcl"``: ``x[t−1] − x[t]`` with ``x[−1] = x[T−1]`` (wrap-around, no rescaling). PCL
    computes it inside the model on normalised input, so place it after `Normalize` to match.
    """

    kind: ClassVar[str] = "format"
    name: ClassVar[str] = "residual"

    def __init__(self, mode: str = "pcl") -> None:
        if mode not in ops.RESIDUAL_MODES:
            raise ConfigError(f"residual mode must be one of {ops.RESIDUAL_MODES}, got {mode!r}")
        self.mode = mode

    def apply_cthw(self, x: torch.Tensor, params: None = None) -> torch.Tensor:
        """Replaces the clip by its residual."""
        return ops.residual(ops.to_float(x), self.mode)
