"""Run-time bookkeeping of unreadable videos, shared by every DataLoader worker of a dataset.

A `FailureMap` is one ``uint8`` flag per video in shared memory (a torch tensor moved to shared
memory when the dataset is built, before workers start): a worker that fails to read a video sets
its flag, and every other worker (and the main process) sees it. A video is logged once, when its
flag is first set, and counted once however often it is drawn.

`replacement_order` gives the videos to try instead of a failed one. It depends only on the item's
seed, not on which videos are already known to be bad: a known-bad video is skipped without being
read, which gives the same result as reading it and failing. So a sample's content is the same
with any number of workers, in any order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch

from vidssl.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["FailureMap"]


class FailureMap:
    """Shared per-video failure flags with once-per-video logging.

    Args:
        names: unicode array of video names (for messages and `failed_videos`).
        what: what the videos are, for the all-failed message (e.g. ``"ucf101 train"``).
    """

    def __init__(self, names: np.ndarray, what: str = "dataset") -> None:
        if len(names) == 0:
            raise DataError(f"{what} has no videos")
        self.names = names
        self.what = what
        self.flags = torch.zeros(len(names), dtype=torch.uint8).share_memory_()

    def __len__(self) -> int:
        return len(self.names)

    def is_bad(self, video: int) -> bool:
        """Whether ``video`` is known to be unreadable."""
        return bool(self.flags[video])

    def mark(self, video: int, error: BaseException) -> None:
        """Flags ``video`` as unreadable; logs a warning the first time."""
        if self.flags[video]:
            return
        self.flags[video] = 1
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        logger.warning("skipping unreadable video %s (%s)", self.names[video], reason)

    def count(self) -> int:
        """Number of distinct videos flagged so far."""
        return int(self.flags.sum())

    def failed_videos(self) -> list[str]:
        """Names of the flagged videos, in table order."""
        return [str(self.names[i]) for i in torch.nonzero(self.flags).flatten().tolist()]

    def candidates(self, video: int, seed: int) -> Iterator[int]:
        """``video`` itself, then the other videos in a seeded order; known-bad ones skipped.

        Args:
            video: the video the item asked for.
            seed: the item's seed; the replacement order is ``default_rng([seed, 2])``'s
                permutation of all videos (drawn only if ``video`` fails).

        Raises:
            DataError: (when exhausted) every video of the dataset is unreadable.
        """
        if not self.is_bad(video):
            yield video
        for other in np.random.default_rng([seed, 2]).permutation(len(self)).tolist():
            if other != video and not self.is_bad(other):
                yield other
        raise DataError(
            f"all {len(self)} videos of {self.what} are unreadable "
            f"(e.g. {self.names[video]}); check the media with 'vidssl data check'"
        )
