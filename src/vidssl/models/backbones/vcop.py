"""VCOP-style R3D-10, R(2+1)D-10 and C3D (the backbones of VCOP, VCP, IIC and PCL).

Key layout, as in those repositories' ``models/r3d.py``, ``r21d.py`` and ``c3d.py``:

* ResNets: ``conv1`` (stem conv), ``bn1``, then ``conv2`` … ``conv5``, each a layer holding
  ``block1`` (and ``blocks.{i}`` for deeper variants). A block registers
  ``downsampleconv``/``downsamplebn`` (layers 3–5 only) then ``conv1, bn1, conv2, bn2``.
* Every conv is a wrapper: R3D's has one ``temporal_spatial_conv`` (Conv3d, no bias); R(2+1)D's
  has ``spatial_conv`` (1,k,k) → ``bn`` → ReLU → ``temporal_conv`` (k,1,1), with
  ``mid = ⌊k_t·k²·in·out / (k²·in + k_t·out)⌋`` computed per conv (unlike torchvision). The
  stem conv is (3,7,7) stride (1,2,2) pad (1,3,3); block convs are 3³ pad 1; the shortcut is a
  1×1×1 stride-2 conv + BN; the first block of ``conv3``–``conv5`` has stride 2 in T, H and W.
* C3D (with BN): ``conv1 bn1 | pool (1,2,2) | conv2 bn2 | pool 2³ | conv3a/b bn3a/b | pool |
  conv4a/b bn4a/b | pool | conv5a/b bn5a/b``, all 3³ convs with padding 1 **and bias**.
* Classifier ``linear`` (only with ``num_classes``); PyTorch default init, as the references.

For 16×112² input the last map is 512×2×7×7; `VcopBackbone.forward_retrieval` applies the
references' ``return_conv`` pooling, MaxPool (1,2,2)/(1,2,2), and flattens it to 9216 values.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from vidssl.models.backbones.base import VideoBackbone, scale_channels

STAGE_WIDTHS = (64, 128, 256, 512)
C3D_WIDTHS = {"1": 64, "2": 128, "3a": 256, "3b": 256, "4a": 512, "4b": 512, "5a": 512, "5b": 512}
C3D_POOL_AFTER = {"1": (1, 2, 2), "2": (2, 2, 2), "3b": (2, 2, 2), "4b": (2, 2, 2)}

Triple = tuple[int, int, int]


def separable_mid_channels(kernel: Triple, in_channels: int, out_channels: int) -> int:
    """VCOP R(2+1)D intermediate width ``⌊k_t·k_h·k_w·in·out / (k_h·k_w·in + k_t·out)⌋``.

    Example:
        The stem (3,7,7) conv 3→64 gives ``⌊28224 / 339⌋ = 83``.
    """
    k_t, k_h, k_w = kernel
    return (k_t * k_h * k_w * in_channels * out_channels) // (
        k_h * k_w * in_channels + k_t * out_channels
    )


class FullConv(nn.Module):
    """R3D conv wrapper: one ``temporal_spatial_conv`` Conv3d without bias."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: Triple, stride: Triple, padding: Triple
    ) -> None:
        super().__init__()
        self.temporal_spatial_conv = nn.Conv3d(
            in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the 3D conv."""
        return self.temporal_spatial_conv(x)


class SeparableConv(nn.Module):
    """R(2+1)D conv wrapper: ``spatial_conv`` → ``bn`` → ReLU → ``temporal_conv`` (no biases)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: Triple, stride: Triple, padding: Triple
    ) -> None:
        super().__init__()
        mid = separable_mid_channels(kernel, in_channels, out_channels)
        self.spatial_conv = nn.Conv3d(
            in_channels,
            mid,
            (1, kernel[1], kernel[2]),
            stride=(1, stride[1], stride[2]),
            padding=(0, padding[1], padding[2]),
            bias=False,
        )
        self.bn = nn.BatchNorm3d(mid)
        self.relu = nn.ReLU()
        self.temporal_conv = nn.Conv3d(
            mid,
            out_channels,
            (kernel[0], 1, 1),
            stride=(stride[0], 1, 1),
            padding=(padding[0], 0, 0),
            bias=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the spatial half, BN, ReLU and the temporal half."""
        return self.temporal_conv(self.relu(self.bn(self.spatial_conv(x))))


ConvWrapper = type[FullConv] | type[SeparableConv]


class ResBlock(nn.Module):
    """VCOP residual block: conv→BN→ReLU→conv→BN, plus (projected) input, then ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, conv: ConvWrapper, downsample: bool
    ) -> None:
        super().__init__()
        stride = (2, 2, 2) if downsample else (1, 1, 1)
        self.downsample = downsample
        if downsample:
            self.downsampleconv = conv(in_channels, out_channels, (1, 1, 1), stride, (0, 0, 0))
            self.downsamplebn = nn.BatchNorm3d(out_channels)
        self.conv1 = conv(in_channels, out_channels, (3, 3, 3), stride, (1, 1, 1))
        self.bn1 = nn.BatchNorm3d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = conv(out_channels, out_channels, (3, 3, 3), (1, 1, 1), (1, 1, 1))
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.outrelu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns ``relu(residual(x) + shortcut(x))``."""
        residual = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        shortcut = self.downsamplebn(self.downsampleconv(x)) if self.downsample else x
        return self.outrelu(shortcut + residual)


class ResLayer(nn.Module):
    """A stage: ``block1`` (optionally downsampling) then ``blocks`` (a ModuleList)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv: ConvWrapper,
        num_blocks: int,
        downsample: bool,
    ) -> None:
        super().__init__()
        self.block1 = ResBlock(in_channels, out_channels, conv, downsample)
        self.blocks = nn.ModuleList(
            ResBlock(out_channels, out_channels, conv, False) for _ in range(num_blocks - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Runs the blocks in order."""
        x = self.block1(x)
        for block in self.blocks:
            x = block(x)
        return x


class VcopBackbone(VideoBackbone):
    """Base for the VCOP nets: classifier named ``linear`` and the 9216-d retrieval feature."""

    classifier_name = "linear"

    def forward_retrieval(self, clips: torch.Tensor) -> torch.Tensor:
        """The references' ``return_conv`` feature: last map → MaxPool(1,2,2) → flatten.

        For 16×112² clips the map is 512×2×7×7, pooled to 512×2×3×3 = 9216 values.

        Args:
            clips: ``B×C×T×H×W``.

        Returns:
            ``B×(feature_dim·t·⌊h/2⌋·⌊w/2⌋)``.
        """
        pooled = F.max_pool3d(self.forward_map(clips), kernel_size=(1, 2, 2), stride=(1, 2, 2))
        return pooled.flatten(1)


class VcopResNet(VcopBackbone):
    """R3D-10 (``'r3d_10'``) or R(2+1)D-10 (``'r21d_10'``): one block per stage.

    Args:
        name: ``'r3d_10'`` or ``'r21d_10'``.
        in_channels: Input channels (3 RGB, 2 for the references' ``uv`` flow models).
        width_mult: Multiplies the stage widths 64..512; R(2+1)D mid widths follow by formula.
        num_classes: Adds ``linear = Linear(feature_dim, num_classes)`` when given.
        layer_sizes: Blocks per stage (``(1, 1, 1, 1)`` is the "-10" depth the references use).
    """

    def __init__(
        self,
        name: str = "r3d_10",
        *,
        in_channels: int = 3,
        width_mult: float = 1.0,
        num_classes: int | None = None,
        layer_sizes: tuple[int, int, int, int] = (1, 1, 1, 1),
    ) -> None:
        super().__init__(
            name, in_channels=in_channels, width_mult=width_mult, num_classes=num_classes
        )
        conv: ConvWrapper = SeparableConv if name == "r21d_10" else FullConv
        widths = [scale_channels(c, width_mult) for c in STAGE_WIDTHS]
        self.conv1 = conv(in_channels, widths[0], (3, 7, 7), (1, 2, 2), (1, 3, 3))
        self.bn1 = nn.BatchNorm3d(widths[0])
        self.relu1 = nn.ReLU()
        channels = widths[0]
        for stage, (width, num_blocks) in enumerate(zip(widths, layer_sizes), start=2):
            layer = ResLayer(channels, width, conv, num_blocks, downsample=stage > 2)
            self.add_module(f"conv{stage}", layer)
            channels = width
        self.feature_dim = channels
        self._add_classifier()

    def forward_map(self, clips: torch.Tensor) -> torch.Tensor:
        """Returns the ``conv5`` output ``B×feature_dim×T/8×H/16×W/16``."""
        x = self.relu1(self.bn1(self.conv1(clips)))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))


class C3D(VcopBackbone):
    """C3D with BatchNorm, as in VCOP/VCP/PCL (``conv1`` … ``conv5b``, each with ``bn*``).

    Args:
        name: ``'c3d'``.
        in_channels: Input channels.
        width_mult: Multiplies every conv width (64..512).
        num_classes: Adds ``linear = Linear(feature_dim, num_classes)`` when given.
    """

    def __init__(
        self,
        name: str = "c3d",
        *,
        in_channels: int = 3,
        width_mult: float = 1.0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(
            name, in_channels=in_channels, width_mult=width_mult, num_classes=num_classes
        )
        channels = in_channels
        for suffix, reference_width in C3D_WIDTHS.items():
            width = scale_channels(reference_width, width_mult)
            self.add_module(f"conv{suffix}", nn.Conv3d(channels, width, 3, padding=1))
            self.add_module(f"bn{suffix}", nn.BatchNorm3d(width))
            channels = width
        self.feature_dim = channels
        self._add_classifier()

    def forward_map(self, clips: torch.Tensor) -> torch.Tensor:
        """Returns the ``conv5b`` output ``B×feature_dim×T/8×H/16×W/16`` (after BN and ReLU)."""
        x = clips
        for suffix in C3D_WIDTHS:
            conv: nn.Conv3d = getattr(self, f"conv{suffix}")
            bn: nn.BatchNorm3d = getattr(self, f"bn{suffix}")
            x = F.relu(bn(conv(x)))
            pool = C3D_POOL_AFTER.get(suffix)
            if pool is not None:
                x = F.max_pool3d(x, kernel_size=pool, stride=pool)
        return x
