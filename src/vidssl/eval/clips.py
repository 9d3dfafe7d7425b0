"""Evaluation-side clip datasets: every clip (window) of every video, with deterministic views.

`VideoClips` is a map-style dataset with **one item per video**: all clips the sampler gives for
that video (sliding windows, 10 uniform clips, one random clip), each turned into one or more views
by the transform (one view for a `Compose`, 5 or 10 for a `MultiCrop`). `collate_videos`
concatenates the clips of a batch of videos, so the forward pass sees ``[n_clips·n_views, C, T, H,
W]`` and the per-clip bookkeeping (which video, which window) travels alongside.

A video that cannot be decoded (`CorruptVideoError`) becomes an item with no clips and its error
message; the collate function drops it and the caller counts it (no crash, no substitution: an
evaluation must not silently score another video in its place).

Randomness (the gallery's one random clip, augmented probe clips) comes from a generator seeded by
``(seed, epoch, video index)``, so results do not depend on worker count or order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vidssl.data.catalogs import VideoTable
from vidssl.data.sampling import ClipSampler
from vidssl.data.transforms.compose import Compose, MultiCrop
from vidssl.errors import ConfigError, CorruptVideoError

__all__ = ["ClipBatch", "VideoClips", "clip_loader", "collate_videos", "item_rng"]

logger = logging.getLogger(__name__)

ClipTransformLike = Compose | MultiCrop | Callable[[torch.Tensor, np.random.Generator], Any]


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of video ``index`` in ``epoch`` (independent of workers and order)."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


class VideoClips(Dataset):
    """All clips of each video of a table, as views ready for a backbone.

    Args:
        table: The videos (one split of a catalog).
        sampler: Clips per video (`SlidingWindows`, `UniformClips`, `RandomClip`, ...).
        transform: ``Compose`` (one view per clip) or ``MultiCrop`` (5/10 views per clip); any
            callable ``(clip_THWC, rng) -> tensor | list[tensor]`` works.
        seed: Seed of the per-video generators (random clips / augmentation).
        source_kwargs: Passed to ``table.source`` (e.g. ``{"threads": 1}``).
    """

    def __init__(
        self,
        table: VideoTable,
        sampler: ClipSampler,
        transform: ClipTransformLike,
        *,
        seed: int = 0,
        source_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.table = table
        self.sampler = sampler
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self.source_kwargs = dict(source_kwargs or {})

    def __len__(self) -> int:
        return len(self.table)

    def set_epoch(self, epoch: int) -> None:
        """Changes the random draws (training clips); evaluation stays at epoch 0."""
        self.epoch = int(epoch)

    def _views(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        out = self.transform(clip, rng)
        views = list(out) if isinstance(out, (list, tuple)) else [out]
        return torch.stack([v.float() for v in views])

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = item_rng(self.seed, self.epoch, index)
        try:
            source = self.table.source(index, **self.source_kwargs)
            clips = self.sampler(len(source), rng)
            wanted = np.unique(np.concatenate([c.indices for c in clips]))
            frames = source.read(wanted)
        except CorruptVideoError as error:
            logger.warning("skipping unreadable video %s: %s", self.table.paths[index], error)
            return {"index": index, "clips": None, "error": str(error).splitlines()[0]}
        views = []
        for clip in clips:
            views.append(self._views(frames[np.searchsorted(wanted, clip.indices)], rng))
        return {
            "index": index,
            "clips": torch.stack(views),  # [n_clips, n_views, C, T, H, W]
            "starts": [c.start for c in clips],
            "error": None,
        }


@dataclass
class ClipBatch:
    """The clips of a batch of videos.

    Attributes:
        clips: ``[N, V, C, T, H, W]``: N clips (all clips of the batch's readable videos), V views.
        video: int64 ``[N]``: table row of each clip's video.
        window: int64 ``[N]``: position of the clip among its video's clips.
        failed: ``(table row, error)`` of the videos that could not be read.
    """

    clips: torch.Tensor | None
    video: torch.Tensor
    window: torch.Tensor
    failed: list[tuple[int, str]]


def collate_videos(items: Sequence[dict[str, Any]]) -> ClipBatch:
    """Concatenates the clips of the items; unreadable videos go to ``failed``."""
    good = [item for item in items if item["clips"] is not None]
    failed = [(int(item["index"]), str(item["error"])) for item in items if item["clips"] is None]
    if not good:
        empty = torch.zeros(0, dtype=torch.int64)
        return ClipBatch(None, empty, empty, failed)
    clips = torch.cat([item["clips"] for item in good])
    video = torch.cat([torch.full((len(i["clips"]),), i["index"]) for i in good])
    window = torch.cat([torch.arange(len(i["clips"])) for i in good])
    return ClipBatch(clips, video.long(), window.long(), failed)


def clip_loader(
    dataset: VideoClips,
    *,
    batch_size: int = 4,
    workers: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    pin_memory: bool = False,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader of `ClipBatch` (``batch_size`` videos per batch).

    ``drop_last`` drops a last incomplete batch (CoCLR's fine-tuning and linear-probe loaders).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1 (videos per batch), got {batch_size}")
    if workers < 0:
        raise ConfigError(f"workers must be >= 0, got {workers}")
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate_videos,
        pin_memory=pin_memory,
        generator=generator,
        persistent_workers=False,
        drop_last=drop_last,
    )
