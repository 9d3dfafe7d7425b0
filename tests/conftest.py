"""Shared fixtures: tiny synthetic videos written on the fly, single-threaded torch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


def frame_pattern(n_frames: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """``T×H×W×3`` uint8 frames whose content changes with the frame index (a moving bar + noise).

    Each frame differs from its neighbours, so a decoder that returns the wrong frame is caught.
    """
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 60, size=(height, width, 3), dtype=np.uint8)
    frames = np.repeat(base[None], n_frames, axis=0).copy()
    for t in range(n_frames):
        x = (t * 3) % width
        frames[t, :, x : x + 4] = 255
        frames[t, : 4 + t % (height - 4), :4, 0] = 200  # a frame-index "counter" in the corner
    return frames


@pytest.fixture
def make_video(tmp_path: Path):
    """Factory ``make_video(name, n_frames=60, gop=16, **kw) -> Path``: a small H.264 file."""
    from vidssl.data.sources.video_io import write_video

    def _make(name: str = "clip.avi", n_frames: int = 60, gop: int = 16, **kwargs) -> Path:
        height = kwargs.pop("height", 48)
        width = kwargs.pop("width", 64)
        path = tmp_path / name
        write_video(path, frame_pattern(n_frames, height, width), gop=gop, **kwargs)
        return path

    return _make


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips ``@pytest.mark.gpu`` tests when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
