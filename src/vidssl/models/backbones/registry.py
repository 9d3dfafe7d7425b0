"""Backbone registry: names, reference input sizes and `build_backbone`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from vidssl.errors import UserError
from vidssl.models.backbones.base import VideoBackbone, check_positive_int, check_width_mult
from vidssl.models.backbones.resnet3d import VideoResNet18
from vidssl.models.backbones.s3d import S3D
from vidssl.models.backbones.vcop import C3D, VcopResNet

# (frames, height, width)
ClipSize = tuple[int, int, int]


@dataclass(frozen=True)
class BackboneSpec:
    """What the registry knows about one backbone name.

    Attributes:
        name: Registry name.
        factory: Builds the module from ``name, in_channels, width_mult, num_classes``.
        reference_inputs: Clip sizes the reference code bases train this backbone at.
        source: Where the layout comes from.
    """

    name: str
    factory: Callable[..., VideoBackbone]
    reference_inputs: tuple[ClipSize, ...]
    source: str


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("s3d", S3D, ((32, 128, 128),), "CoCLR backbone/s3dg.py (gating off)"),
        BackboneSpec(
            "s3dg", partial(S3D, gating=True), ((32, 128, 128),), "CoCLR backbone/s3dg.py"
        ),
        BackboneSpec(
            "r3d_18",
            VideoResNet18,
            ((16, 112, 112), (32, 112, 112)),
            "torchvision r3d_18",
        ),
        BackboneSpec(
            "r2plus1d_18",
            VideoResNet18,
            ((16, 112, 112), (32, 112, 112)),
            "torchvision r2plus1d_18 (SEVERE)",
        ),
        BackboneSpec("r3d_10", VcopResNet, ((16, 112, 112),), "VCOP/VCP/PCL models/r3d.py"),
        BackboneSpec("r21d_10", VcopResNet, ((16, 112, 112),), "VCOP/VCP/PCL models/r21d.py"),
        BackboneSpec("c3d", C3D, ((16, 112, 112),), "VCOP/VCP/PCL models/c3d.py"),
    )
}

BACKBONE_NAMES: tuple[str, ...] = tuple(BACKBONES)


def backbone_spec(name: str) -> BackboneSpec:
    """Returns the registry entry for ``name``; raises `UserError` listing valid names."""
    spec = BACKBONES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise UserError(f"backbone {name!r}: expected one of {', '.join(BACKBONE_NAMES)}")
    return spec


def build_backbone(
    name: str,
    *,
    in_channels: int = 3,
    width_mult: float = 1.0,
    num_classes: int | None = None,
) -> VideoBackbone:
    """Builds a video backbone with the reference key layout.

    Args:
        name: One of `BACKBONE_NAMES`: ``s3d``, ``s3dg``, ``r3d_18``, ``r2plus1d_18``,
            ``r3d_10``, ``r21d_10``, ``c3d``.
        in_channels: Input channels (3 for RGB; 2 or 3 for optical flow).
        width_mult: Channel multiplier; 1.0 is the exact reference layout, smaller values give
            tiny models (every width rounded half up, at least 1, same branch structure).
        num_classes: Adds a linear classifier, so ``forward`` returns logits.

    Returns:
        A `VideoBackbone`: ``forward(x)`` gives ``B×feature_dim`` pooled features (or logits),
        ``forward_map(x)`` the last feature map; ``config()`` the arguments to rebuild it.

    Raises:
        UserError: Unknown name or invalid ``in_channels``/``width_mult``/``num_classes``.
    """
    spec = backbone_spec(name)
    return spec.factory(
        name,
        in_channels=check_positive_int(in_channels, "in_channels"),
        width_mult=check_width_mult(width_mult),
        num_classes=check_positive_int(num_classes, "num_classes", allow_none=True),
    )
