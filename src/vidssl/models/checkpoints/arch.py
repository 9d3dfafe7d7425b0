"""Architectures of checkpoints: the TCLR layer-4 variant and inference from keys and shapes.

Besides the registry backbones (`vidssl.models.BACKBONE_NAMES`) there is one variant,
``r2plus1d_18_tclr``: TCLR's R(2+1)D-18 whose ``layer4.0.conv1.0`` is a full 3×3×3 conv
(dilation 2 in time, padding (2,1,1), stride (1,2,2)) and whose ``layer4.0.downsample.0`` has
stride (1,2,2), so layer 4 keeps the temporal length (SEVERE §4). SEVERE applies this surgery
only when the method string is exactly ``'tclr'``; its SlowFast configs pass ``'TCLR'``, so the
3D conv was silently dropped there. Here the variant is recognised from the keys themselves.

Inference works on state dicts already renamed to our keys: the architecture comes from a
signature key, the input channels from the first conv, and ``width_mult`` from the BatchNorm
widths (each must equal ``max(1, ⌊reference·w + 0.5⌋)``), so tiny test models and full-width
releases are read the same way.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping

import torch
from torch import nn

from vidssl.errors import CheckpointError
from vidssl.models.backbones import BACKBONE_NAMES, VideoBackbone, build_backbone

TCLR_VARIANT = "tclr_layer4"
# pseudo-architecture name -> (registry backbone, variant)
ARCH_VARIANTS: dict[str, tuple[str, str]] = {"r2plus1d_18_tclr": ("r2plus1d_18", TCLR_VARIANT)}
ARCH_NAMES: tuple[str, ...] = (*BACKBONE_NAMES, *ARCH_VARIANTS)

# (architecture, key that only it has); the first match wins, so specific ones come first.
_ARCH_SIGNATURES: tuple[tuple[str, str], ...] = (
    ("s3dg", "Mixed_3b.gating_b0.fc.weight"),
    ("s3d", "Conv_1a.conv1.weight"),
    ("r2plus1d_18", "stem.3.weight"),
    ("r3d_18", "stem.0.weight"),
    ("r21d_10", "conv1.spatial_conv.weight"),
    ("r3d_10", "conv1.temporal_spatial_conv.weight"),
    ("c3d", "conv3a.weight"),
)
_TCLR_CONV_KEY = "layer4.0.conv1.0.weight"

# BatchNorms whose width is derived (R(2+1)D mid widths), not a scaled reference width.
_DERIVED_WIDTH_BN: dict[str, re.Pattern[str]] = {
    "r2plus1d_18": re.compile(r"\.conv[12]\.0\.1\.weight$"),
    "r21d_10": re.compile(r"(^|\.)bn\.weight$"),
}


def split_arch(arch: str) -> tuple[str, str | None]:
    """Returns ``(registry backbone name, variant or None)`` for an architecture name.

    Raises:
        CheckpointError: Unknown architecture.
    """
    if arch in ARCH_VARIANTS:
        return ARCH_VARIANTS[arch]
    if arch in BACKBONE_NAMES:
        return arch, None
    raise CheckpointError(f"architecture {arch!r}: expected one of {', '.join(ARCH_NAMES)}")


def arch_of(model: VideoBackbone) -> str:
    """Returns the architecture name of a built backbone, including the TCLR variant."""
    if getattr(model, "variant", None) == TCLR_VARIANT:
        return "r2plus1d_18_tclr"
    return model.name


def apply_tclr_layer4(model: VideoBackbone) -> VideoBackbone:
    """Replaces ``layer4.0``'s first conv and shortcut of an R(2+1)D-18 by TCLR's, in place.

    ``layer4.0.conv1.0`` becomes ``Conv3d(C3, C4, 3, stride (1,2,2), padding (2,1,1), dilation
    (2,1,1), bias=False)`` and ``layer4.0.downsample.0`` ``Conv3d(C3, C4, 1, stride (1,2,2),
    bias=False)``, with C3/C4 the (width-scaled) widths of layers 3 and 4; both get the
    backbone's kaiming (fan_out) init. Sets ``model.variant = TCLR_VARIANT``.

    Raises:
        CheckpointError: ``model`` is not an ``r2plus1d_18``.
    """
    if model.name != "r2plus1d_18":
        raise CheckpointError(f"TCLR's layer-4 layout needs an r2plus1d_18, got {model.name!r}")
    block = model.layer4[0]
    in_channels = block.downsample[0].in_channels
    out_channels = block.downsample[0].out_channels
    block.conv1[0] = nn.Conv3d(
        in_channels,
        out_channels,
        kernel_size=(3, 3, 3),
        stride=(1, 2, 2),
        padding=(2, 1, 1),
        dilation=(2, 1, 1),
        bias=False,
    )
    block.downsample[0] = nn.Conv3d(
        in_channels, out_channels, kernel_size=(1, 1, 1), stride=(1, 2, 2), bias=False
    )
    for conv in (block.conv1[0], block.downsample[0]):
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    model.variant = TCLR_VARIANT
    return model


def build_encoder_backbone(
    arch: str,
    *,
    in_channels: int = 3,
    width_mult: float = 1.0,
    num_classes: int | None = None,
) -> VideoBackbone:
    """`vidssl.models.build_backbone` that also knows ``r2plus1d_18_tclr``.

    Args:
        arch: A registry name or ``'r2plus1d_18_tclr'``.
        in_channels: Input channels.
        width_mult: Channel multiplier.
        num_classes: Adds the classifier when given.
    """
    name, variant = split_arch(arch)
    model = build_backbone(
        name, in_channels=in_channels, width_mult=width_mult, num_classes=num_classes
    )
    return apply_tclr_layer4(model) if variant == TCLR_VARIANT else model


@functools.lru_cache(maxsize=64)
def _meta_shapes(arch: str, in_channels: int, width_mult: float) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = build_encoder_backbone(arch, in_channels=in_channels, width_mult=width_mult)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def expected_shapes(arch: str, in_channels: int, width_mult: float) -> dict[str, tuple[int, ...]]:
    """Key → shape of the backbone (no classifier), computed on the ``meta`` device and cached."""
    return dict(_meta_shapes(arch, in_channels, float(width_mult)))


def guess_architecture(state: Mapping[str, torch.Tensor]) -> str | None:
    """Returns the architecture whose signature keys ``state`` (our key names) has, or None."""
    for arch, key in _ARCH_SIGNATURES:
        if key in state:
            if arch == "r2plus1d_18" and getattr(state.get(_TCLR_CONV_KEY), "ndim", 0) == 5:
                return "r2plus1d_18_tclr"
            return arch
    return None


def guess_in_channels(arch: str, state: Mapping[str, torch.Tensor]) -> int | None:
    """Returns the input channels read from the first conv's weight, or None if absent."""
    first_conv = next(key for key, shape in _meta_shapes(arch, 3, 1.0).items() if len(shape) == 5)
    weight = state.get(first_conv)
    return int(weight.shape[1]) if weight is not None and weight.ndim == 5 else None


def _width_interval(arch: str, state: Mapping[str, torch.Tensor]) -> tuple[float, float]:
    reference = _meta_shapes(arch, 3, 1.0)
    derived = _DERIVED_WIDTH_BN.get(split_arch(arch)[0])
    low, high = 0.0, math.inf
    for key, shape in reference.items():
        is_batchnorm_weight = key.endswith(".weight") and f"{key[:-6]}running_mean" in reference
        if not is_batchnorm_weight or (derived is not None and derived.search(key)):
            continue
        tensor = state.get(key)
        if tensor is None or tensor.ndim != 1:
            continue
        channels, reference_channels = int(tensor.shape[0]), shape[0]
        if channels > 1:
            low = max(low, (channels - 0.5) / reference_channels)
        high = min(high, (channels + 0.5) / reference_channels)
    return low, high


# Grids searched for a width, simplest first: 1- and 2-digit decimals, then binary fractions
# (0.0625 = 1/16), then longer decimals.
_WIDTH_GRIDS = (10, 100, 2, 4, 8, 16, 32, 64, 1_000, 10_000, 100_000, 1_000_000)


def _simplest_between(low: float, high: float) -> list[float]:
    """Candidate widths in ``[low, high)``, simplest first.

    1.0 if inside, then the values on the first grid of `_WIDTH_GRIDS` that has any (closest to
    the middle first), then the midpoint.

    Example:
        ``[0.1236, 0.1259)`` gives ``[0.125, 0.12475]`` (no 1- or 2-digit decimal fits, 1/8
        does).
    """
    middle = (low + high) / 2
    candidates = [1.0] if low <= 1.0 < high else []
    for denominator in _WIDTH_GRIDS:
        first, last = math.ceil(low * denominator), math.ceil(high * denominator) - 1
        if first <= last:
            values = [i / denominator for i in range(first, min(last, first + 9) + 1)]
            candidates += sorted(values, key=lambda value: abs(value - middle))
            break
    return [*candidates, middle]


def guess_width_mult(
    arch: str, state: Mapping[str, torch.Tensor], in_channels: int = 3
) -> float | None:
    """Returns a ``width_mult`` that reproduces every tensor shape of ``state``, or None.

    The BatchNorm widths bound ``w`` to an interval; the simplest value in it (1.0, then the
    shortest decimal) is checked against all shapes with a ``meta``-device build.
    """
    low, high = _width_interval(arch, state)
    if not math.isfinite(high) or low >= high:
        return None
    for candidate in _simplest_between(low, high):
        shapes = _meta_shapes(arch, in_channels, candidate)
        if all(
            tuple(tensor.shape) == shapes[key] for key, tensor in state.items() if key in shapes
        ):
            return candidate
    return None
