"""S3D and gated S3D-G with CoCLR's parameter names (``Conv_1a.*`` ... ``Mixed_5c.*``).

Layout (CoCLR ``backbone/s3dg.py``; channels at ``width_mult=1``):

=============  ==========================================  ==========  =====================
module         op                                          out         stride (T, H, W)
=============  ==========================================  ==========  =====================
Conv_1a        STConv k=7, stride 2, pad 3                 64          2, 2, 2
MaxPool_2a     max-pool (1,3,3) / (1,2,2), pad (0,1,1)     64          1, 2, 2
Conv_2b        1×1×1 conv                                  64
Conv_2c        STConv k=3, pad 1                           192
MaxPool_3a     max-pool (1,3,3) / (1,2,2), pad (0,1,1)     192         1, 2, 2
Mixed_3b, 3c   separable inception                         256, 480
MaxPool_4a     max-pool 3³ / 2, pad 1                      480         2, 2, 2
Mixed_4b..4f   separable inception                         512 .. 832
MaxPool_5a     max-pool 2³ / 2                             832         2, 2, 2
Mixed_5b, 5c   separable inception                         832, 1024
=============  ==========================================  ==========  =====================

Total stride is 8 in time and 32 in space: 32×128² gives 1024×4×4×4. ``STConv`` is
conv(1,k,k) → BN → ReLU → conv(k,1,1) → BN → ReLU, registered as ``conv1, conv2, bn1, bn2``.
BatchNorm uses PyTorch defaults; convs are initialised N(0, 0.01) and BN to (1, 0), like CoCLR.
CoCLR's module also registers every block a second time inside ``block1 … block5``
``nn.Sequential``s, so its state dicts hold each tensor under two names; we register each module
once and publish the alias mapping as `S3D_BLOCK_ALIASES` for checkpoint import.
"""

from __future__ import annotations

import torch
from torch import nn

from vidssl.models.backbones.base import VideoBackbone, scale_channels

# CoCLR alias prefix -> our (canonical) prefix. ``blockN.0`` of blocks 2-5 is a max-pool and
# has no parameters, so it has no entry.
S3D_BLOCK_ALIASES: dict[str, str] = {
    "block1.0": "Conv_1a",
    "block2.1": "Conv_2b",
    "block2.2": "Conv_2c",
    "block3.1": "Mixed_3b",
    "block3.2": "Mixed_3c",
    "block4.1": "Mixed_4b",
    "block4.2": "Mixed_4c",
    "block4.3": "Mixed_4d",
    "block4.4": "Mixed_4e",
    "block4.5": "Mixed_4f",
    "block5.1": "Mixed_5b",
    "block5.2": "Mixed_5c",
}

# Inception branch widths per Mixed block, in CoCLR's order:
# [branch0 1×1, branch1 1×1, branch1 STConv, branch2 1×1, branch2 STConv, branch3 pool-1×1].
_MIXED_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def s3d_alias_to_canonical(key: str) -> str:
    """Maps a CoCLR ``blockN.i.*`` state-dict key to our ``Conv_*``/``Mixed_*`` key.

    Keys that are not aliases are returned unchanged.

    Args:
        key: A key relative to the S3D module (no ``encoder_q.0.`` or ``backbone.`` prefix).

    Example:
        ``"block4.5.branch1.1.conv2.weight"`` → ``"Mixed_4f.branch1.1.conv2.weight"``.
    """
    parts = key.split(".", 2)
    if len(parts) == 3:
        canonical = S3D_BLOCK_ALIASES.get(f"{parts[0]}.{parts[1]}")
        if canonical is not None:
            return f"{canonical}.{parts[2]}"
    return key


def _init_conv_bn(conv: nn.Conv3d, bn: nn.BatchNorm3d) -> None:
    nn.init.normal_(conv.weight, mean=0.0, std=0.01)
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)


class BasicConv3d(nn.Module):
    """Conv3d (no bias) → BatchNorm3d → ReLU, with keys ``conv.*`` and ``bn.*``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        _init_conv_bn(self.conv, self.bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies conv, BN and ReLU."""
        return self.relu(self.bn(self.conv(x)))


class STConv3d(nn.Module):
    """Separable conv: (1,k,k) spatial → BN → ReLU → (k,1,1) temporal → BN → ReLU.

    Args:
        in_channels: Input channels.
        out_channels: Output channels of both convs.
        kernel_size: k.
        stride: Spatial stride (and temporal stride unless ``temporal_stride`` is given).
        padding: Padding p, applied as (0,p,p) then (p,0,0).
        temporal_stride: Stride of the temporal conv; defaults to ``stride``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        temporal_stride: int | None = None,
    ) -> None:
        super().__init__()
        t_stride = stride if temporal_stride is None else temporal_stride
        self.conv1 = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size=(1, kernel_size, kernel_size),
            stride=(1, stride, stride),
            padding=(0, padding, padding),
            bias=False,
        )
        self.conv2 = nn.Conv3d(
            out_channels,
            out_channels,
            kernel_size=(kernel_size, 1, 1),
            stride=(t_stride, 1, 1),
            padding=(padding, 0, 0),
            bias=False,
        )
        self.bn1 = nn.BatchNorm3d(out_channels)
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        _init_conv_bn(self.conv1, self.bn1)
        _init_conv_bn(self.conv2, self.bn2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the spatial then the temporal half."""
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))


class SelfGating(nn.Module):
    """S3D-G feature gating: ``x · sigmoid(fc(mean_{t,h,w} x))`` per channel (key ``fc.*``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scales each channel of ``x`` by its gate."""
        gates = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * gates[:, :, None, None, None]


class SepInception(nn.Module):
    """Separable inception block with four branches concatenated along channels.

    Args:
        in_channels: Input channels.
        widths: The six branch widths (see ``_MIXED_WIDTHS``), already width-scaled.
        gating: Adds `SelfGating` after each branch (``gating_b0 … gating_b3``).
    """

    def __init__(
        self, in_channels: int, widths: tuple[int, int, int, int, int, int], gating: bool
    ) -> None:
        super().__init__()
        b0, b1_reduce, b1, b2_reduce, b2, b3 = widths
        self.branch0 = nn.Sequential(BasicConv3d(in_channels, b0))
        self.branch1 = nn.Sequential(
            BasicConv3d(in_channels, b1_reduce), STConv3d(b1_reduce, b1, 3, padding=1)
        )
        self.branch2 = nn.Sequential(
            BasicConv3d(in_channels, b2_reduce), STConv3d(b2_reduce, b2, 3, padding=1)
        )
        self.branch3 = nn.Sequential(
            nn.MaxPool3d(kernel_size=3, stride=1, padding=1), BasicConv3d(in_channels, b3)
        )
        self.out_channels = b0 + b1 + b2 + b3
        self.gating = gating
        if gating:
            self.gating_b0 = SelfGating(b0)
            self.gating_b1 = SelfGating(b1)
            self.gating_b2 = SelfGating(b2)
            self.gating_b3 = SelfGating(b3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Runs the four branches (gated if enabled) and concatenates them."""
        outputs = [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)]
        if self.gating:
            gates = (self.gating_b0, self.gating_b1, self.gating_b2, self.gating_b3)
            outputs = [gate(out) for gate, out in zip(gates, outputs)]
        return torch.cat(outputs, dim=1)


class S3D(VideoBackbone):
    """CoCLR's S3D / S3D-G trunk (7,910,048 parameters at width 1, no gating, no classifier).

    Args:
        name: ``'s3d'`` or ``'s3dg'``.
        in_channels: Input channels (3 for RGB; CoCLR feeds flow as 3 channels too).
        width_mult: Multiplies every channel count; 1.0 is the exact reference.
        num_classes: Adds ``fc = Linear(feature_dim, num_classes)`` when given.
        gating: Self-gating after every inception branch (S3D-G).
    """

    classifier_name = "fc"

    def __init__(
        self,
        name: str = "s3d",
        *,
        in_channels: int = 3,
        width_mult: float = 1.0,
        num_classes: int | None = None,
        gating: bool = False,
    ) -> None:
        super().__init__(
            name, in_channels=in_channels, width_mult=width_mult, num_classes=num_classes
        )
        self.gating = gating

        def width(channels: int) -> int:
            return scale_channels(channels, width_mult)

        spatial_pool = {"kernel_size": (1, 3, 3), "stride": (1, 2, 2), "padding": (0, 1, 1)}
        self.Conv_1a = STConv3d(in_channels, width(64), 7, stride=2, padding=3)
        self.MaxPool_2a = nn.MaxPool3d(**spatial_pool)
        self.Conv_2b = BasicConv3d(width(64), width(64))
        self.Conv_2c = STConv3d(width(64), width(192), 3, padding=1)
        self.MaxPool_3a = nn.MaxPool3d(**spatial_pool)
        channels = width(192)
        mixed: dict[str, SepInception] = {}
        for block_name, widths in _MIXED_WIDTHS.items():
            scaled = tuple(width(c) for c in widths)
            mixed[block_name] = SepInception(channels, scaled, gating)  # type: ignore[arg-type]
            channels = mixed[block_name].out_channels
        self.Mixed_3b, self.Mixed_3c = mixed["Mixed_3b"], mixed["Mixed_3c"]
        self.MaxPool_4a = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        self.Mixed_4b, self.Mixed_4c = mixed["Mixed_4b"], mixed["Mixed_4c"]
        self.Mixed_4d, self.Mixed_4e = mixed["Mixed_4d"], mixed["Mixed_4e"]
        self.Mixed_4f = mixed["Mixed_4f"]
        self.MaxPool_5a = nn.MaxPool3d(kernel_size=2, stride=2)
        self.Mixed_5b, self.Mixed_5c = mixed["Mixed_5b"], mixed["Mixed_5c"]
        self.feature_dim = channels
        self._add_classifier()
        if self.num_classes is not None:
            nn.init.normal_(self.fc.weight, std=0.01)
            nn.init.zeros_(self.fc.bias)

    def forward_map(self, clips: torch.Tensor) -> torch.Tensor:
        """Returns the ``Mixed_5c`` output ``B×feature_dim×T/8×H/32×W/32``."""
        x = self.Conv_2c(self.Conv_2b(self.MaxPool_2a(self.Conv_1a(clips))))
        x = self.Mixed_3c(self.Mixed_3b(self.MaxPool_3a(x)))
        x = self.MaxPool_4a(x)
        for block in (self.Mixed_4b, self.Mixed_4c, self.Mixed_4d, self.Mixed_4e, self.Mixed_4f):
            x = block(x)
        return self.Mixed_5c(self.Mixed_5b(self.MaxPool_5a(x)))
