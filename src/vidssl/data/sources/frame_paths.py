"""A video given as an explicit list of JPEG frame paths (AVA/Charades frame lists)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vidssl.data.sources.base import _read_jpegs


class FramePaths:
    """Frames stored as one JPEG per frame, frame ``i`` being ``paths[i]``.

    Args:
        paths: the frame files in frame order.
        min_short_side: allow reduced-size JPEG decoding down to this short side.
    """

    def __init__(
        self, paths: Sequence[str | os.PathLike], *, min_short_side: int | None = None
    ) -> None:
        self.paths = [Path(path) for path in paths]
        self.min_short_side = min_short_side

    def __repr__(self) -> str:
        first = str(self.paths[0]) if self.paths else ""
        return f"FramePaths({len(self.paths)} frames from {first!r})"

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Decodes the frames at ``indices`` into a ``T×H×W×C`` uint8 tensor.

        Raises:
            IndexError: an index is negative or ``>= len(self)``.
            CorruptVideoError: a frame file cannot be read or decoded.
        """
        return _read_jpegs(
            indices,
            len(self.paths),
            lambda i: self.paths[i].read_bytes(),
            self.min_short_side,
            self,
        )
