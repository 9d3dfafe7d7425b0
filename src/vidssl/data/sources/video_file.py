"""`VideoFile`: random access to the frames of an encoded video (PyAV), decoding only what is read.

Frames are located without decoding, from the demuxer's own index (MP4, AVI without B-frames) or
from one scan of the packets, and the index is cached per process. A read seeks to the keyframe at
or before each group of wanted frames and decodes forward to the group's last frame, matching frames
by timestamp; far-apart groups get their own seek. Whenever decoded timestamps disagree with the
index (made-up AVI timestamps with B-frames, a seek that overshoots), the read falls back to
decoding from the first frame and counting, so the result always equals a full sequential decode.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from vidssl.errors import CorruptVideoError

logger = logging.getLogger(__name__)

SEEK_MIN_SKIP = 16
"""Seek again between two wanted frames only when that skips at least this many decoded frames."""
_INDEX_CACHE_SIZE = 4096


def check_frame_indices(
    indices: Sequence[int] | np.ndarray, n_frames: int, where: object
) -> np.ndarray:
    """Validates frame indices against ``n_frames``; returns them as an int64 array.

    Raises:
        ValueError: no index given.
        IndexError: an index is negative or ``>= n_frames``.
    """
    array = np.asarray(indices, dtype=np.int64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{where}: read() needs at least one frame index")
    if array.min() < 0 or array.max() >= n_frames:
        bad = int(array.max() if array.max() >= n_frames else array.min())
        raise IndexError(f"{where}: frame index {bad} out of range for {n_frames} frames")
    return array


def stack_frames(frames: dict[int, np.ndarray], order: np.ndarray, where: object) -> torch.Tensor:
    """Stacks ``frames[i]`` for ``i`` in ``order`` into a ``T×H×W×3`` tensor (repeats allowed).

    Raises:
        CorruptVideoError: the frames do not all have the same size.
    """
    shapes = {frame.shape for frame in frames.values()}
    if len(shapes) != 1:
        raise CorruptVideoError(f"{where}: frames have different sizes {sorted(shapes)}")
    return torch.from_numpy(np.stack([frames[int(i)] for i in order]))


@contextlib.contextmanager
def _decode_errors(path: object) -> Iterator[None]:
    """Turns any PyAV / FFmpeg / file-system failure into a `CorruptVideoError` naming ``path``."""
    try:
        yield
    except (av.FFmpegError, OSError, EOFError) as error:
        raise CorruptVideoError(f"{path}: {type(error).__name__}: {error}") from error


@dataclass(frozen=True)
class _VideoIndex:
    """Where the frames of a video stream are, known without decoding.

    Attributes:
        n_frames: frame count.
        stamps: per frame in display order, the timestamp that names it (sorted, unique).
        stamp: the frame attribute holding that timestamp ('pts' or 'dts'); None when timestamps
            cannot name frames, so reads decode from the first frame and count.
        key_display: display indices of the keyframes, sorted.
        key_seek_ts: timestamp to seek to for each keyframe.
        frame_rate: average frames per second (0.0 if unknown).
    """

    n_frames: int
    stamps: np.ndarray
    stamp: str | None
    key_display: np.ndarray
    key_seek_ts: np.ndarray
    frame_rate: float


_INDEX_CACHE: OrderedDict[tuple[str, int, int], _VideoIndex] = OrderedDict()
_NO_KEYS = np.zeros(0, np.int64)


def clear_caches() -> None:
    """Forgets every cached frame index of this process (the next read of a video starts cold)."""
    _INDEX_CACHE.clear()


def _frame_rate(stream: av.VideoStream) -> float:
    return float(stream.average_rate or stream.guessed_rate or 0)


def _index_from_container(stream: av.VideoStream) -> _VideoIndex | None:
    """The demuxer's own index (MP4, AVI) when it is complete and decode order is display order.

    Frames are then named by their dts. Returns None when that shortcut does not apply.
    """
    if not stream.frames or stream.codec_context.has_b_frames:
        return None
    entries = stream.index_entries
    if len(entries) != stream.frames:
        return None
    stamps, keys = [], []
    for position, entry in enumerate(entries):
        if entry.is_discard or entry.size <= 0:
            return None
        stamps.append(entry.timestamp)
        if entry.is_keyframe:
            keys.append(position)
    stamps = np.array(stamps, np.int64)
    if len(stamps) > 1 and np.any(np.diff(stamps) <= 0):
        return None
    key_display = np.array(keys, np.int64)
    return _VideoIndex(
        len(stamps), stamps, "dts", key_display, stamps[key_display], _frame_rate(stream)
    )


def _scan_packets(container: av.container.InputContainer, stream, path: object) -> _VideoIndex:
    """Builds the frame index by demuxing (not decoding) every packet; frames are named by pts."""
    entries = []  # (pts, dts, is_keyframe) in decode order
    n_raw = 0
    for packet in container.demux(stream):
        if packet.size == 0 and packet.pts is None and packet.dts is None:
            continue  # the demuxer's end-of-stream flush packet
        n_raw += 1
        if packet.size > 0 and not packet.is_discard:
            entries.append((packet.pts, packet.dts, packet.is_keyframe))
    _check_not_truncated(container, stream, n_raw, entries, path)
    pts = [entry[0] for entry in entries]
    exact = None not in pts and len(set(pts)) == len(pts)
    if exact and len(pts) > 2 and stream.codec_context.has_b_frames:
        # The decoder reorders frames, yet the pts never go backwards in decode order: they were
        # made up from the packet count (AVI) and do not name frames.
        exact = any(later < earlier for earlier, later in itertools.pairwise(pts))
    if not exact:
        return _VideoIndex(len(entries), _NO_KEYS, None, _NO_KEYS, _NO_KEYS, _frame_rate(stream))
    pts_array = np.array(pts, np.int64)
    display = np.empty(len(pts), np.int64)
    display[np.argsort(pts_array, kind="stable")] = np.arange(len(pts))
    keys = sorted(
        (display[j], p if d is None else min(p, d)) for j, (p, d, key) in enumerate(entries) if key
    )
    return _VideoIndex(
        n_frames=len(pts),
        stamps=np.sort(pts_array),
        stamp="pts",
        key_display=np.array([display for display, _ in keys], np.int64),
        key_seek_ts=np.array([ts for _, ts in keys], np.int64),
        frame_rate=_frame_rate(stream),
    )


def _check_not_truncated(container, stream, n_raw: int, entries: list, path: object) -> None:
    """Raises `CorruptVideoError` when the headers promise more video than the file holds."""
    if stream.frames and n_raw < stream.frames:
        raise CorruptVideoError(
            f"{path}: truncated, header lists {stream.frames} frames, has {n_raw}"
        )
    rate = _frame_rate(stream)
    timestamps = [entry[0] for entry in entries if entry[0] is not None]
    if stream.frames or len(container.streams) != 1 or not container.duration or rate <= 0:
        return  # with other streams, the container duration need not be the video's
    span = 0.0
    if timestamps and stream.time_base is not None:
        span = float((max(timestamps) - min(timestamps)) * stream.time_base) + 1.0 / rate
    declared = container.duration / av.time_base
    if span < 0.9 * declared - 0.1:
        raise CorruptVideoError(f"{path}: truncated, {span:.2f} s of {declared:.2f} s present")


def _output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) after scaling the short side to ``short_side`` (aspect kept)."""
    if short_side is None or min(width, height) == short_side:
        return width, height
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


class _TimestampMismatchError(Exception):
    """Decoded frames do not carry the timestamps the index expects."""


class VideoFile:
    """Frames of an encoded video file, decoding only what is asked for (PyAV).

    The frame index comes from the container's own index (MP4, AVI without B-frames) or from one
    scan of the packets (no decoding); it is cached per process. Reads seek to the keyframe at or
    before each group of wanted frames and decode forward, matching frames by timestamp. When the
    timestamps turn out not to name frames (e.g. B-frames in AVI), reads decode from the first
    frame and count, which is exact but slower.

    Args:
        path: the video file.
        threads: decoder threads (1 is best with one decoder per DataLoader worker).
        short_side: if given, frames are scaled at decode time so that their short side is this.
    """

    def __init__(
        self, path: str | os.PathLike, *, threads: int = 1, short_side: int | None = None
    ) -> None:
        self.path = Path(path)
        self.threads = threads
        self.short_side = short_side
        self._index: _VideoIndex | None = None

    def __repr__(self) -> str:
        return f"VideoFile({str(self.path)!r})"

    def __len__(self) -> int:
        with _decode_errors(self.path), self._open() as (container, stream):
            return self._get_index(container, stream).n_frames

    @property
    def frame_rate(self) -> float:
        """Average frames per second from the container (0.0 if unknown)."""
        with _decode_errors(self.path), self._open() as (container, stream):
            return self._get_index(container, stream).frame_rate

    def read(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Decodes the frames at ``indices`` (see `FrameSource.read`).

        Raises:
            IndexError: an index is negative or ``>= len(self)``.
            CorruptVideoError: the file cannot be opened or decoded.
        """
        with _decode_errors(self.path):
            while True:  # container index → packet scan → counting decode, each at most once
                with self._open() as (container, stream):
                    index = self._get_index(container, stream)
                    order = check_frame_indices(indices, index.n_frames, self.path)
                    wanted = np.unique(order)
                    frames: dict[int, np.ndarray] = {}
                    try:
                        if index.stamp is None:
                            self._decode_counting(container, stream, wanted, frames)
                        else:
                            self._decode_by_stamps(container, stream, index, wanted, frames)
                        return stack_frames(frames, order, self.path)
                    except _TimestampMismatchError as reason:
                        logger.debug("%s: %s", self.path, reason)
                if index.stamp == "pts":  # timestamps do not name frames: count them instead
                    self._remember(replace(index, stamp=None))
                else:  # the container's index disagrees with the packets: scan them
                    with self._open() as (container, stream):
                        self._remember(_scan_packets(container, stream, self.path))

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yields every frame (``H×W×3`` uint8) by one sequential decode.

        Raises:
            CorruptVideoError: the file cannot be opened or decoded, or it yields a different
                number of frames than ``len(self)`` (truncated or inconsistent file).
        """
        n_frames = len(self)
        with _decode_errors(self.path), self._open() as (container, stream):
            reformatter = VideoReformatter()
            count = 0
            for frame in container.decode(stream):
                yield self._to_array(frame, reformatter)
                count += 1
        if count != n_frames:
            raise CorruptVideoError(f"{self.path}: decoded {count} frames, index lists {n_frames}")

    @contextlib.contextmanager
    def _open(self) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
        with av.open(str(self.path), mode="r") as container:
            if not container.streams.video:
                raise CorruptVideoError(f"{self.path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO" if self.threads > 1 else "SLICE"
            stream.codec_context.thread_count = self.threads
            yield container, stream

    def _cache_key(self) -> tuple[str, int, int]:
        stat = self.path.stat()
        return str(self.path.resolve()), stat.st_size, stat.st_mtime_ns

    def _remember(self, index: _VideoIndex) -> None:
        self._index = index
        key = self._cache_key()
        _INDEX_CACHE[key] = index
        _INDEX_CACHE.move_to_end(key)
        while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)

    def _get_index(self, container, stream) -> _VideoIndex:
        if self._index is None:
            self._index = _INDEX_CACHE.get(self._cache_key())
        if self._index is None:
            index = _index_from_container(stream) or _scan_packets(container, stream, self.path)
            self._remember(index)
        return self._index

    def _to_array(self, frame: av.VideoFrame, reformatter: VideoReformatter) -> np.ndarray:
        width, height = _output_size(frame.width, frame.height, self.short_side)
        return reformatter.reformat(
            frame, width, height, "rgb24", interpolation="AREA"
        ).to_ndarray()

    def _decode_by_stamps(self, container, stream, index, wanted, frames) -> None:
        """Seek + forward decode per group of nearby wanted frames."""
        key_slot = np.searchsorted(index.key_display, wanted, side="right") - 1
        key_display = np.where(key_slot >= 0, index.key_display[np.maximum(key_slot, 0)], 0)
        reformatter = VideoReformatter()
        group_start = 0
        for end in range(1, len(wanted) + 1):
            if end < len(wanted) and key_display[end] - wanted[end - 1] - 1 < SEEK_MIN_SKIP:
                continue  # decoding on to the next wanted frame is cheaper than seeking
            group, slot = wanted[group_start:end], key_slot[group_start]
            seek_ts = index.key_seek_ts[slot] if slot >= 0 else index.stamps[0]
            try:
                self._decode_group(container, stream, index, group, seek_ts, frames, reformatter)
            except _TimestampMismatchError:
                if slot <= 0:
                    raise
                first_ts = index.key_seek_ts[0]  # the seek overshot: decode from the start
                self._decode_group(container, stream, index, group, first_ts, frames, reformatter)
            group_start = end

    def _decode_group(self, container, stream, index, group, seek_ts, frames, reformatter) -> None:
        container.seek(int(seek_ts), stream=stream, backward=True, any_frame=False)
        first_ts, last_ts = index.stamps[group[0]], index.stamps[group[-1]]
        group_set = set(group.tolist())
        previous = None
        for frame in container.decode(stream):
            stamp = getattr(frame, index.stamp)
            if stamp is None or (previous is None and stamp > first_ts):
                raise _TimestampMismatchError(f"first frame after seek: {stamp} > {first_ts}")
            if previous is not None and stamp <= previous:
                raise _TimestampMismatchError(f"{index.stamp} go backwards: {previous}, {stamp}")
            display = int(np.searchsorted(index.stamps, stamp))
            if display >= index.n_frames or index.stamps[display] != stamp:
                raise _TimestampMismatchError(f"decoded {index.stamp} {stamp} is not indexed")
            previous = stamp
            if display in group_set and display not in frames:
                frames[display] = self._to_array(frame, reformatter)
            if stamp >= last_ts:
                return
        raise CorruptVideoError(f"{self.path}: decoding stopped before frame {group[-1]}")

    def _decode_counting(self, container, stream, wanted, frames) -> None:
        """Decodes from the first frame, counting frames (exact whatever the timestamps)."""
        wanted_set, last = set(wanted.tolist()), int(wanted[-1])
        reformatter = VideoReformatter()
        for display, frame in enumerate(container.decode(stream)):
            if display in wanted_set:
                frames[display] = self._to_array(frame, reformatter)
            if display >= last:
                return
        raise CorruptVideoError(f"{self.path}: decoding stopped before frame {last}")
