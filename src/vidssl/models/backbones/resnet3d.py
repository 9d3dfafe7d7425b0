"""R3D-18 and R(2+1)D-18 with torchvision's exact state-dict layout (``stem.*``, ``layer1..4.*``).

Torchvision ``models/video/resnet.py`` facts reproduced here (no torchvision import):

* ``r3d_18`` stem: Conv3d(C→64, (3,7,7), stride (1,2,2), pad (1,3,3)) → BN → ReLU.
* ``r2plus1d_18`` stem: Conv3d(C→45, (1,7,7), stride (1,2,2), pad (0,3,3)) → BN → ReLU →
  Conv3d(45→64, (3,1,1), pad (1,0,0)) → BN → ReLU (indices ``stem.0`` … ``stem.5``).
* A basic block is ``conv1 = Seq(conv, BN, ReLU)``, ``conv2 = Seq(conv, BN)``, residual, ReLU;
  the first block of layers 2–4 has stride 2 in T, H and W and a
  ``downsample = Seq(Conv3d 1×1×1 stride 2, BN)``.
* The R3D conv is one Conv3d 3×3×3 (key ``conv1.0.weight``); the R(2+1)D conv is
  ``Seq(Conv3d (1,3,3), BN, ReLU, Conv3d (3,1,1))`` (keys ``conv1.0.0``, ``conv1.0.1``,
  ``conv1.0.3``) with ``mid = in·out·27 // (in·9 + 3·out)`` computed **once per block from the
  block's input width** and reused for ``conv2`` (so ``layer2.0.conv2`` has 230, not 288).
* Init: kaiming-normal (fan_out, ReLU) for convs, BN weight 1 / bias 0, fc N(0, 0.01) / 0.
* ``r2plus1d_18`` has 31,505,325 parameters with a 400-way ``fc``; ``r3d_18`` 33,371,472.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vidssl.models.backbones.base import VideoBackbone, scale_channels

STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = (2, 2, 2, 2)
R2PLUS1D_STEM_MID = 45

# Builds the main conv of a block: (in_channels, out_channels, mid_channels, stride) -> module.
ConvBuilder = Callable[[int, int, int, int], nn.Module]


def r2plus1d_mid_channels(in_channels: int, out_channels: int) -> int:
    """Torchvision's R(2+1)D intermediate width for a 3×3×3 conv: ``in·out·27 // (in·9 + 3·out)``.

    Example:
        ``r2plus1d_mid_channels(64, 128) == 230`` and ``r2plus1d_mid_channels(128, 128) == 288``.
    """
    return (in_channels * out_channels * 27) // (in_channels * 9 + 3 * out_channels)


def conv3d_full(in_channels: int, out_channels: int, mid_channels: int, stride: int) -> nn.Module:
    """R3D block conv: one Conv3d 3×3×3, padding 1, no bias (``mid_channels`` is unused)."""
    del mid_channels
    return nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv2plus1d(in_channels: int, out_channels: int, mid_channels: int, stride: int) -> nn.Module:
    """R(2+1)D block conv: Conv(1,3,3) → BN → ReLU → Conv(3,1,1), as ``nn.Sequential`` 0..3."""
    return nn.Sequential(
        nn.Conv3d(
            in_channels,
            mid_channels,
            kernel_size=(1, 3, 3),
            stride=(1, stride, stride),
            padding=(0, 1, 1),
            bias=False,
        ),
        nn.BatchNorm3d(mid_channels),
        nn.ReLU(inplace=True),
        nn.Conv3d(
            mid_channels,
            out_channels,
            kernel_size=(3, 1, 1),
            stride=(stride, 1, 1),
            padding=(1, 0, 0),
            bias=False,
        ),
    )


class BasicBlock(nn.Module):
    """Torchvision's video ``BasicBlock`` (keys ``conv1.*``, ``conv2.*``, ``downsample.*``).

    Args:
        in_channels: Block input width.
        out_channels: Block output width.
        conv_builder: `conv3d_full` or `conv2plus1d`.
        stride: Stride of the first conv (in T, H and W).
    """

    def __init__(
        self, in_channels: int, out_channels: int, conv_builder: ConvBuilder, stride: int = 1
    ) -> None:
        super().__init__()
        mid_channels = r2plus1d_mid_channels(in_channels, out_channels)
        self.conv1 = nn.Sequential(
            conv_builder(in_channels, out_channels, mid_channels, stride),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            conv_builder(out_channels, out_channels, mid_channels, 1),
            nn.BatchNorm3d(out_channels),
        )
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block: ``relu(conv2(conv1(x)) + shortcut(x))``."""
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + shortcut)


class VideoResNet18(VideoBackbone):
    """R3D-18 / R(2+1)D-18 trunk with torchvision's key names; ``fc`` only with ``num_classes``.

    Args:
        name: ``'r3d_18'`` or ``'r2plus1d_18'``.
        in_channels: Input channels (3 RGB, 2 or 3 flow).
        width_mult: Multiplies the stage widths (64..512) and the R(2+1)D stem width 45; the
            R(2+1)D mid widths follow from the scaled widths by the torchvision rule.
        num_classes: Adds ``fc = Linear(feature_dim, num_classes)`` when given.
    """

    classifier_name = "fc"

    def __init__(
        self,
        name: str = "r2plus1d_18",
        *,
        in_channels: int = 3,
        width_mult: float = 1.0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(
            name, in_channels=in_channels, width_mult=width_mult, num_classes=num_classes
        )
        separable = name == "r2plus1d_18"
        conv_builder: ConvBuilder = conv2plus1d if separable else conv3d_full
        widths = [scale_channels(c, width_mult) for c in STAGE_WIDTHS]
        self.stem = self._make_stem(in_channels, widths[0], separable, width_mult)
        channels = widths[0]
        for stage, (width, blocks) in enumerate(zip(widths, BLOCKS_PER_STAGE), start=1):
            stride = 1 if stage == 1 else 2
            layer = [BasicBlock(channels, width, conv_builder, stride)]
            layer += [BasicBlock(width, width, conv_builder) for _ in range(blocks - 1)]
            self.add_module(f"layer{stage}", nn.Sequential(*layer))
            channels = width
        self.feature_dim = channels
        self._add_classifier()
        self._initialize_weights()

    @staticmethod
    def _make_stem(
        in_channels: int, out_channels: int, separable: bool, width_mult: float
    ) -> nn.Sequential:
        if not separable:
            return nn.Sequential(
                nn.Conv3d(in_channels, out_channels, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                nn.BatchNorm3d(out_channels),
                nn.ReLU(inplace=True),
            )
        mid = scale_channels(R2PLUS1D_STEM_MID, width_mult)
        return nn.Sequential(
            nn.Conv3d(in_channels, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_channels, (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )

    def _initialize_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)
                nn.init.zeros_(module.bias)

    def forward_map(self, clips: torch.Tensor) -> torch.Tensor:
        """Returns the ``layer4`` output ``B×feature_dim×T/8×H/16×W/16``."""
        x = self.stem(clips)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
