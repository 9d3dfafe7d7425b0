"""Shared base class and argument checks for every video backbone.

A backbone maps a clip batch ``B×C×T×H×W`` to a last feature map (`VideoBackbone.forward_map`)
and to a pooled ``B×feature_dim`` vector (`VideoBackbone.forward`), or to logits when it was
built with ``num_classes``. The classifier, when present, is registered under the name that the
reference code base used (``fc`` for torchvision and S3D, ``linear`` for the VCOP nets), so the
state-dict keys stay the reference's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from vidssl.errors import UserError


def check_width_mult(width_mult: float) -> float:
    """Returns ``width_mult`` as a float, or raises `UserError` unless it is a positive number.

    Args:
        width_mult: Channel multiplier; 1.0 is the exact reference layout.
    """
    if isinstance(width_mult, bool) or not isinstance(width_mult, int | float):
        raise UserError(f"width_mult: expected a positive number, got {width_mult!r}")
    if not math.isfinite(width_mult) or width_mult <= 0:
        raise UserError(f"width_mult: expected a positive finite number, got {width_mult!r}")
    return float(width_mult)


def check_positive_int(value: Any, what: str, *, allow_none: bool = False) -> int | None:
    """Returns ``value`` if it is a positive int (or None when allowed), else raises `UserError`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{what}: expected a positive integer, got {value!r}")
    return value


def scale_channels(channels: int, width_mult: float) -> int:
    """Scales a reference channel count, rounding half up and never going below 1.

    ``width_mult == 1.0`` returns ``channels`` unchanged, so full-width models are exact.

    Args:
        channels: The reference channel count.
        width_mult: Positive multiplier.
    """
    if width_mult == 1.0:
        return channels
    return max(1, math.floor(channels * width_mult + 0.5))


class VideoBackbone(nn.Module):
    """Base class: pooled features, feature maps, optional classifier and build metadata.

    Subclasses build their layers, set ``feature_dim`` and implement `forward_map`; they call
    `_add_classifier` last so the classifier's keys come after the trunk's, as in the
    references.

    Attributes:
        name: Registry name (``'s3d'``, ``'r2plus1d_18'``, ...).
        in_channels: Input channels (3 for RGB, 2 or 3 for flow).
        width_mult: Channel multiplier the backbone was built with.
        num_classes: Classifier outputs, or None for a feature extractor.
        feature_dim: Channels of the last feature map (= pooled feature size).
    """

    classifier_name: str = "fc"

    def __init__(
        self, name: str, *, in_channels: int, width_mult: float, num_classes: int | None
    ) -> None:
        super().__init__()
        self.name = name
        self.in_channels = in_channels
        self.width_mult = width_mult
        self.num_classes = num_classes
        self.feature_dim = 0

    def _add_classifier(self) -> None:
        """Registers ``Linear(feature_dim, num_classes)`` under `classifier_name` if requested."""
        if self.num_classes is not None:
            self.add_module(self.classifier_name, nn.Linear(self.feature_dim, self.num_classes))

    @property
    def classifier(self) -> nn.Linear | None:
        """The linear classifier, or None when the backbone was built without ``num_classes``."""
        if self.num_classes is None:
            return None
        return getattr(self, self.classifier_name)

    def forward_map(self, clips: torch.Tensor) -> torch.Tensor:
        """Returns the last feature map ``B×feature_dim×t×h×w`` for clips ``B×C×T×H×W``."""
        raise NotImplementedError

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Returns global-average-pooled features ``B×feature_dim``, or logits with a classifier.

        Args:
            clips: Float tensor ``B×C×T×H×W``.
        """
        pooled = self.forward_map(clips).mean(dim=(2, 3, 4))
        classifier = self.classifier
        return pooled if classifier is None else classifier(pooled)

    def config(self) -> dict[str, Any]:
        """Returns the keyword arguments that rebuild this backbone with `build_backbone`.

        The exporter stores this next to the weights; ``feature_dim`` is included for readers
        that only need the feature size.
        """
        return {
            "name": self.name,
            "in_channels": self.in_channels,
            "width_mult": self.width_mult,
            "num_classes": self.num_classes,
            "feature_dim": self.feature_dim,
        }

    def extra_repr(self) -> str:
        """Shows the build metadata in ``print(model)``."""
        return (
            f"name={self.name!r}, in_channels={self.in_channels}, width_mult={self.width_mult}, "
            f"feature_dim={self.feature_dim}, num_classes={self.num_classes}"
        )
