"""VCP: the video-cloze pretext alone (BestJuly's ``train_vcp.py``), PCL without its contrast.

The same model and steps as `vidssl.methods.pcl.PCL` with ``w_con = 0`` (no projection head, no
memory banks), VCP's weak augmentation (resize 128×171 → random 112 crop on [0, 1], no
normalisation) and VCP's residual ``((roll(x, 1, T) − x) + 1)/2`` on [0, 1] clips. ``method.name
=pcl`` with ``method.w_con=0`` trains the same objective with PCL's augmentation and residual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vidssl.methods.pcl import PCL, PCLConfig
from vidssl.methods.registry import register_method

__all__ = ["VCP", "VCPConfig"]


@dataclass
class VCPConfig(PCLConfig):
    """VCP settings: `PCLConfig` with VCP's defaults (no contrast, weak aug, ``vcp`` residual)."""

    name: str = "vcp"
    w_con: float = 0.0
    residual: Literal["none", "pcl", "vcp", "iic"] = "vcp"
    strong_aug: bool = False


@register_method("vcp")
class VCP(PCL):
    """Video cloze procedure (5-way cloze cross-entropy on a 3-clip tuple)."""

    config_class = VCPConfig
