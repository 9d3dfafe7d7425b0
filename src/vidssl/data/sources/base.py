"""Frame sources: random access to the frames of one video, whatever its storage.

A source returns a ``uint8`` tensor ``T×H×W×3`` for a list of frame indices (any order, duplicates
allowed) and ``len(source)`` is its frame count. Three storages are supported:

* `VideoFile`: an encoded video read with PyAV. Only the needed span is decoded: it seeks to the
  keyframe at or before the first wanted frame and decodes forward to the last one, seeking again
  for far-apart groups of frames. The result equals a full sequential decode at those indices.
* `FrameFolder`: a folder of JPEG frames (``image_%05d.jpg``, ``frame%06d.jpg``, ...).
* `LmdbVideo`: one record of a CoCLR LMDB (a msgpack list of JPEG bytes).

Sources hold no open handles between calls, so they pickle to DataLoader workers; the LMDB
environment is opened once per process on first use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from vidssl.data.sources import frame_files, lmdb_store
from vidssl.data.sources.video_file import VideoFile, check_frame_indices, stack_frames
from vidssl.errors import CorruptVideoError
from vidssl.utils.jpeg import decode_jpeg

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp"}
)
__all__ = [
    "VIDEO_EXTENSIONS",
    "FrameFolder",
    "FrameSource",
    "LmdbVideo",
    "VideoFile",
    "find_videos",
]


@runtime_checkable
class FrameSource(Protocol):
    """Random access to the frames of one video."""

    def __len__(self) -> int:
        """Number of frames."""
        ...

    def read(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Frames at ``indices`` as a ``uint8`` tensor ``T×H×W×3``, in the order given."""
        ...


def find_videos(root: str | os.PathLike) -> list[Path]:
    """Video files below ``root`` (recursive, hidden entries skipped), sorted by path."""
    found = []
    for current, subdirs, files in os.walk(root):
        subdirs[:] = [name for name in subdirs if not name.startswith(".")]
        found.extend(
            Path(current) / name
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_EXTENSIONS
        )
    return sorted(found)


# -------------------------------------------------------------------------------- JPEG sources


def _read_jpegs(
    indices: Sequence[int] | np.ndarray,
    n_frames: int,
    fetch: Callable[[int], bytes],
    min_short_side: int | None,
    where: object,
) -> torch.Tensor:
    """Decodes each distinct wanted JPEG once (``fetch(i)`` gives its bytes) and stacks them."""
    order = check_frame_indices(indices, n_frames, where)
    frames = {}
    for i in np.unique(order).tolist():
        try:
            frames[i] = decode_jpeg(fetch(i), min_short_side)
        except OSError as error:
            raise CorruptVideoError(f"{where}: frame {i}: {error}") from error
    return stack_frames(frames, order, where)


class FrameFolder:
    """Frames stored as one image file per frame in a folder (see `frame_files.list_frames`).

    Args:
        directory: the video's frame folder.
        min_short_side: allow reduced-size JPEG decoding down to this short side.
    """

    def __init__(self, directory: str | os.PathLike, *, min_short_side: int | None = None) -> None:
        self.directory = Path(directory)
        self.min_short_side = min_short_side
        self._names: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"FrameFolder({str(self.directory)!r})"

    def _frame_names(self) -> np.ndarray:
        if self._names is None:
            try:
                files = frame_files.list_frames(self.directory)
            except OSError as error:
                raise CorruptVideoError(f"{self.directory}: cannot list frames: {error}") from error
            self._names = np.array([path.name for path in files], dtype=str)
        return self._names

    def __len__(self) -> int:
        return len(self._frame_names())

    def read(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Decodes the frame files at ``indices`` (see `FrameSource.read`).

        Raises:
            IndexError: an index is negative or ``>= len(self)``.
            CorruptVideoError: the folder or a frame file cannot be read or decoded.
        """
        names = self._frame_names()
        return _read_jpegs(
            indices,
            len(names),
            lambda i: (self.directory / str(names[i])).read_bytes(),
            self.min_short_side,
            self.directory,
        )


class LmdbVideo:
    """One video of a CoCLR LMDB: a msgpack list of JPEG bytes under ``b'%09d' % video_id``.

    Args:
        db_path: the ``.lmdb`` file (or LMDB directory).
        key: the 'Class/video' name (looked up in ``__order__``) or the integer video id.
        min_short_side: allow reduced-size JPEG decoding down to this short side.
    """

    def __init__(
        self, db_path: str | os.PathLike, key: str | int, *, min_short_side: int | None = None
    ) -> None:
        self.db_path = Path(db_path)
        self.key = key
        self.min_short_side = min_short_side
        self._video_id: int | None = key if isinstance(key, int) else None

    def __repr__(self) -> str:
        return f"LmdbVideo({str(self.db_path)!r}, {self.key!r})"

    def _where(self) -> str:
        return f"{self.db_path} [{self.key}]"

    def _lookup(self) -> tuple[lmdb_store.LmdbReader, int, int]:
        """(reader, video id, frame count from ``__vlen__`` or -1)."""
        try:
            reader = lmdb_store.shared_reader(self.db_path)
            if self._video_id is None:
                self._video_id = reader.video_id(str(self.key))
            return reader, self._video_id, reader.frame_count(self._video_id)
        except (KeyError, OSError, lmdb_store.LmdbError) as error:
            raise CorruptVideoError(f"{self._where()}: {error}") from error

    def _record(self, reader: lmdb_store.LmdbReader, video_id: int) -> list[bytes]:
        try:
            return reader.record(video_id)
        except (KeyError, ValueError, lmdb_store.LmdbError) as error:
            raise CorruptVideoError(f"{self._where()}: {error}") from error

    def __len__(self) -> int:
        reader, video_id, n_frames = self._lookup()
        return n_frames if n_frames >= 0 else len(self._record(reader, video_id))

    def read(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Decodes the frames at ``indices`` of this record (see `FrameSource.read`).

        Raises:
            IndexError: an index is negative or ``>= len(self)``.
            CorruptVideoError: the record is missing, undecodable, or shorter than ``__vlen__``.
        """
        reader, video_id, n_frames = self._lookup()
        record = self._record(reader, video_id)
        order = check_frame_indices(indices, n_frames if n_frames >= 0 else len(record), self)
        if order.max() >= len(record):
            raise CorruptVideoError(
                f"{self._where()}: record has {len(record)} of {n_frames} frames"
            )
        return _read_jpegs(
            order, len(record), record.__getitem__, self.min_short_side, self._where()
        )
