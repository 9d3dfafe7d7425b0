"""Tiny tables for the dataset tests: video files, JPEG frame folders, and corrupt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.conftest import frame_pattern

from vidssl.data.catalogs import VideoTable
from vidssl.data.sources.video_io import write_video
from vidssl.data.transforms.compose import Compose, ToFloat
from vidssl.utils.jpeg import encode_jpeg

SIZE = 32


def plain() -> Compose:
    """A pipeline with no randomness and no resampling: views are exactly ``frames / 255``."""
    return Compose([ToFloat()])


def table(
    media: Path,
    paths: list[str],
    *,
    storage: str = "video",
    n_frames: list[int] | None = None,
    groups: list[int] | None = None,
    labels: list[int] | None = None,
) -> VideoTable:
    """A `VideoTable` over ``media`` (frame counts unknown unless given)."""
    n = len(paths)
    return VideoTable(
        name="test",
        split="train",
        media=str(media),
        storage=storage,
        paths=np.array(paths, dtype=str),
        labels=np.array(labels if labels is not None else list(range(n)), dtype=np.int64),
        n_frames=np.array(n_frames if n_frames is not None else [-1] * n, dtype=np.int64),
        groups=np.array(groups if groups is not None else [-1] * n, dtype=np.int64),
        class_names=tuple(f"c{i}" for i in range(n)),
    )


def write_videos(media: Path, lengths: list[int]) -> list[str]:
    """Writes ``v{i}.avi`` with ``lengths[i]`` frames (content seeded by ``i``); their names."""
    media.mkdir(parents=True, exist_ok=True)
    names = []
    for i, n in enumerate(lengths):
        write_video(media / f"v{i}.avi", frame_pattern(n, SIZE, SIZE, seed=i), gop=8)
        names.append(f"v{i}.avi")
    return names


def write_frame_folder(folder: Path, frames: np.ndarray, prefix: str = "image") -> None:
    """Writes ``frames`` (``T×H×W×3``) as ``prefix_%05d.jpg`` (1-based) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames, start=1):
        (folder / f"{prefix}_{t:05d}.jpg").write_bytes(encode_jpeg(frame, quality=95))


def write_corrupt(media: Path, good: Path) -> list[str]:
    """A zero-byte file, a garbage file and a truncated copy of ``good``; their names."""
    (media / "zero.avi").write_bytes(b"")
    (media / "garbage.avi").write_bytes(np.random.default_rng(0).bytes(4000))
    data = good.read_bytes()
    (media / "truncated.avi").write_bytes(data[: len(data) // 2])
    return ["zero.avi", "garbage.avi", "truncated.avi"]


def tiny_synth(root: Path, corrupt: int = 0) -> Path:
    """A synthetic UCF101-layout dataset: 2 classes × 6 videos of 11-21 frames at 42×32."""
    from vidssl.data.synthetic import make_synthetic_dataset

    make_synthetic_dataset(
        root, classes=2, videos_per_class=6, frames=16, size=32, corrupt=corrupt, workers=1
    )
    return root
