"""Shared helpers of the evaluation tests: a fake backbone and hand-made video tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidssl.data.catalogs import VideoTable
from vidssl.eval.encoders import EvalEncoder, InputSpec

IDENTITY = InputSpec(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


class MeanBackbone(nn.Module):
    """Feature = per-channel mean of the clip (plus a fixed bias so features are never zero)."""

    feature_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))  # something for an optimiser to hold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4)) * self.scale + 0.1


def fake_encoder() -> EvalEncoder:
    return EvalEncoder(MeanBackbone(), IDENTITY, {"kind": "test", "sha256": None})


def video_table(
    make_video, lengths: list[int], labels: list[int], split: str = "test", **kwargs
) -> VideoTable:
    """A table of videos ``v{i}.avi`` with the given frame counts (48×64 frames)."""
    paths = [make_video(f"{split}{i}.avi", n, **kwargs) for i, n in enumerate(lengths)]
    media = Path(paths[0]).parent
    return VideoTable(
        name="test",
        split=split,
        media=str(media),
        storage="video",
        paths=np.array([p.name for p in paths]),
        labels=np.array(labels, dtype=np.int64),
        n_frames=np.full(len(paths), -1, dtype=np.int64),
        groups=np.full(len(paths), -1, dtype=np.int64),
        class_names=tuple(f"c{i}" for i in range(max(labels) + 1)),
    )
