"""The SEVERE AVA detection head (``ResNetRoIHead`` of the reference's ``VSSL`` model) and its loss.

Encoder ``layer4`` map ``B×512×T'×H'×W'`` (``T' = T/8``, stride 16) → average over time (the
reference's ``AvgPool3d([T/8, 1, 1])`` on a ``T/8``-long map) → RoIAlign 7×7 at scale 1/16,
adaptive sampling, aligned → max-pool 7 (a global max over the 7×7 bins) → dropout 0.5 →
``Linear(512, 80)``. The reference applies a sigmoid in the model and ``nn.BCELoss``; here the head
returns logits and `ava_loss` is ``binary_cross_entropy_with_logits`` (the same value, stable).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidssl.downstream.ava.roi_align import RoIAlign

NUM_CLASSES = 80
"""AVA v2.2 action ids 1..80 (the model predicts all; 60 of them are evaluated)."""


class AvaRoIHead(nn.Module):
    """Per-box action logits from a clip feature map and boxes.

    Args:
        in_channels: channels of the feature map (512 for R(2+1)D-18).
        num_classes: outputs per box (80 for AVA).
        resolution: RoIAlign output size (7).
        spatial_scale: feature pixels per input pixel (1/16).
        sampling_ratio: RoIAlign points per bin and axis (0 = adaptive).
        aligned: aligned RoIAlign (the SEVERE configs set ``DETECTION.ALIGNED: True``).
        dropout: dropout before the linear layer (0.5).
    """

    def __init__(
        self,
        in_channels: int = 512,
        num_classes: int = NUM_CLASSES,
        resolution: int = 7,
        spatial_scale: float = 1.0 / 16,
        sampling_ratio: int = 0,
        aligned: bool = True,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.roi_align = RoIAlign(resolution, spatial_scale, sampling_ratio, aligned)
        self.max_pool = nn.MaxPool2d(resolution)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(in_channels, num_classes)

    def forward(self, feature_map: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Logits ``[K, num_classes]``.

        Args:
            feature_map: ``[B, C, T', H', W']`` (or ``[B, C, H', W']`` already pooled over time).
            boxes: ``[K, 5]`` rows ``(batch_index, x1, y1, x2, y2)`` in input-clip pixels.
        """
        if feature_map.dim() == 5:
            feature_map = feature_map.mean(dim=2)
        pooled = self.max_pool(self.roi_align(feature_map, boxes.to(feature_map.dtype)))
        return self.projection(self.dropout(pooled.flatten(1)))


def ava_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of sigmoid(logits) against multi-hot targets ``[K, classes]``."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
