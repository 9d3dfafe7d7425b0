"""Video backbones: S3D, R3D-18, R(2+1)D-18, VCOP-style R3D-10/R(2+1)D-10/C3D."""

from vidssl.models.backbones.base import VideoBackbone
from vidssl.models.backbones.registry import (
    BACKBONE_NAMES,
    BACKBONES,
    BackboneSpec,
    backbone_spec,
    build_backbone,
)
from vidssl.models.backbones.s3d import S3D_BLOCK_ALIASES, s3d_alias_to_canonical

__all__ = [
    "BACKBONES",
    "BACKBONE_NAMES",
    "S3D_BLOCK_ALIASES",
    "BackboneSpec",
    "VideoBackbone",
    "backbone_spec",
    "build_backbone",
    "s3d_alias_to_canonical",
]
