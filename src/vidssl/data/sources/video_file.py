"""`VideoFile`: random access to the frames of an encoded video (PyAV), decoding only what is read.

Frames are located without decoding, from the demuxer's own index (MP4, AVI without B-frames) or
from one scan of the packets, and the index is cached per process. A read seeks to the keyframe at
or before each group of wanted frames and decodes forward to the group's last frame, matching frames
by timestamp; far-apart groups get their own seek. Whenever decoded timestamps disagree with the
index (made-up AVI timestamps with B-frames, a seek that overshoots), the read falls back to
decoding from the first frame and counting, so the result always equals a full sequential decode.

Costs that are not decoding are kept out of the read: a small per-process LRU keeps the last few
containers open (closed in a forked child and at exit), each with its reformatter; frames go
straight from the colour conversion into the preallocated clip; and while decoding towards the
wanted frames, the decoder skips non-reference frames that are not wanted (``skip_frame NONREF``,
which cannot change any other frame).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from vidssl.data.sources.video_index import VideoIndex, index_from_container, scan_packets
from vidssl.errors import CorruptVideoError

logger = logging.getLogger(__name__)

SEEK_MIN_SKIP = 16
"""Seek again between two wanted frames only when that skips at least this many decoded frames."""
_INDEX_CACHE_SIZE = 4096
OPEN_CONTAINERS = 8
"""Containers kept open per process (one file descriptor each), least recently used closed first."""


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


_INDEX_CACHE: OrderedDict[tuple[str, int, int], VideoIndex] = OrderedDict()

_Opened = tuple[av.container.InputContainer, av.VideoStream, VideoReformatter]
_OPEN: OrderedDict[tuple, _Opened] = OrderedDict()
_OPEN_LOCK = threading.Lock()


def _take_open(key: tuple) -> _Opened | None:
    """Removes and returns the open container for ``key`` (one user at a time), if any."""
    with _OPEN_LOCK:
        return _OPEN.pop(key, None)


def _give_back_open(key: tuple, opened: _Opened) -> None:
    """Keeps ``opened`` for the next read of the same file, closing the least recently used."""
    with _OPEN_LOCK:
        previous = _OPEN.pop(key, None)
        _OPEN[key] = opened
        evicted = [previous[0]] if previous is not None else []
        while len(_OPEN) > OPEN_CONTAINERS:
            evicted.append(_OPEN.popitem(last=False)[1][0])
    for container in evicted:
        container.close()


def close_open_containers() -> None:
    """Closes every container this process keeps open (at exit, in a forked child, on demand)."""
    with _OPEN_LOCK:
        opened = list(_OPEN.values())
        _OPEN.clear()
    for container, _, _ in opened:
        with contextlib.suppress(Exception):
            container.close()


def _after_fork_in_child() -> None:
    global _OPEN_LOCK
    _OPEN_LOCK = threading.Lock()  # the parent may have held it while forking
    close_open_containers()  # the file offsets are shared with the parent: never reuse them


atexit.register(close_open_containers)
os.register_at_fork(after_in_child=_after_fork_in_child)


def clear_caches() -> None:
    """Forgets every cached frame index and closes kept containers (the next read starts cold)."""
    _INDEX_CACHE.clear()
    close_open_containers()


def _output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) after scaling the short side to ``short_side`` (aspect kept)."""
    if short_side is None or min(width, height) == short_side:
        return width, height
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


def _decode_packet(codec: av.codec.context.CodecContext, packet: av.Packet) -> list[av.VideoFrame]:
    """The frames the decoder returns for ``packet`` (one place, so tests can count them)."""
    return codec.decode(packet)


class _TimestampMismatchError(Exception):
    """Decoded frames do not carry the timestamps the index expects."""


class _Clip:
    """The clip being read: frames are copied straight into their slots of one preallocated array.

    Args:
        order: the display indices asked for, in the order asked (repeats allowed).
        where: what to name in errors.
    """

    def __init__(self, order: np.ndarray, where: object) -> None:
        self.where = where
        self.slots: dict[int, list[int]] = {}
        for slot, display in enumerate(order.tolist()):
            self.slots.setdefault(display, []).append(slot)
        self.length = len(order)
        self.missing = set(self.slots)
        self.array: np.ndarray | None = None

    def wants(self, display: int) -> bool:
        """True while frame ``display`` is asked for and not yet stored."""
        return display in self.missing

    def put(self, display: int, frame: np.ndarray) -> None:
        """Stores ``frame`` (``H×W×3``) in every slot of ``display``.

        Raises:
            CorruptVideoError: its size differs from the frames stored before.
        """
        if self.array is None:
            self.array = np.empty((self.length, *frame.shape), np.uint8)
        elif frame.shape != self.array.shape[1:]:
            shapes = sorted({frame.shape, self.array.shape[1:]})
            raise CorruptVideoError(f"{self.where}: frames have different sizes {shapes}")
        for slot in self.slots[display]:
            self.array[slot] = frame
        self.missing.discard(display)

    def tensor(self) -> torch.Tensor:
        """The filled clip, ``T×H×W×3`` uint8."""
        assert self.array is not None and not self.missing
        return torch.from_numpy(self.array)


class VideoFile:
    """Frames of an encoded video file, decoding only what is asked for (PyAV).

    The frame index comes from the container's own index (MP4, AVI without B-frames) or from one
    scan of the packets (no decoding); it is cached per process. Reads seek to the keyframe at or
    before each group of wanted frames and decode forward, matching frames by timestamp. When the
    timestamps turn out not to name frames (e.g. B-frames in AVI), reads decode from the first
    frame and count, which is exact but slower. Up to `OPEN_CONTAINERS` files stay open per
    process between reads (`close_open_containers` closes them; a forked child never reuses them).

    Args:
        path: the video file.
        threads: decoder and colour-conversion threads (1 is best with one decoder per DataLoader
            worker; only with 1 does the decoder skip unwanted non-reference frames).
        short_side: if given, frames are scaled at decode time so that their short side is this.
    """

    def __init__(
        self, path: str | os.PathLike, *, threads: int = 1, short_side: int | None = None
    ) -> None:
        self.path = Path(path)
        self.threads = threads
        self.short_side = short_side
        self._index: VideoIndex | None = None

    def __repr__(self) -> str:
        return f"VideoFile({str(self.path)!r})"

    def __len__(self) -> int:
        return self._known_index().n_frames

    @property
    def frame_rate(self) -> float:
        """Average frames per second from the container (0.0 if unknown)."""
        return self._known_index().frame_rate

    def read(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Decodes the frames at ``indices`` (see `FrameSource.read`).

        Raises:
            IndexError: an index is negative or ``>= len(self)``.
            CorruptVideoError: the file cannot be opened or decoded.
        """
        with _decode_errors(self.path):
            while True:  # container index → packet scan → counting decode, each at most once
                with self._open(reuse=True) as (container, stream, reformatter):
                    index = self._get_index(container, stream)
                    order = check_frame_indices(indices, index.n_frames, self.path)
                    wanted = np.unique(order)
                    if index.stamp is not None:
                        clip = _Clip(order, self.path)
                        try:
                            self._decode_by_stamps(
                                container, stream, index, wanted, clip, reformatter
                            )
                            return clip.tensor()
                        except _TimestampMismatchError as reason:
                            logger.debug("%s: %s", self.path, reason)
                if index.stamp is None:  # decode from the first frame on a freshly opened file
                    with self._open() as (container, stream, reformatter):
                        clip = _Clip(order, self.path)
                        self._decode_counting(container, stream, wanted, clip, reformatter)
                        return clip.tensor()
                if index.stamp == "pts":  # timestamps do not name frames: count them instead
                    self._remember(replace(index, stamp=None))
                else:  # the container's index disagrees with the packets: scan them
                    with self._open() as (container, stream, _):
                        self._remember(scan_packets(container, stream, self.path))

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yields every frame (``H×W×3`` uint8) by one sequential decode.

        Raises:
            CorruptVideoError: the file cannot be opened or decoded, or it yields a different
                number of frames than ``len(self)`` (truncated or inconsistent file).
        """
        n_frames = len(self)
        with _decode_errors(self.path), self._open() as (container, stream, reformatter):
            count = 0
            for frame in container.decode(stream):
                yield self._to_array(frame, reformatter)
                count += 1
        if count != n_frames:
            raise CorruptVideoError(f"{self.path}: decoded {count} frames, index lists {n_frames}")

    @contextlib.contextmanager
    def _open(self, reuse: bool = False) -> Iterator[_Opened]:
        """A container positioned at the start, or with ``reuse`` one kept open (any position).

        A kept container is only handed out while the index is known (building it needs the
        start); it goes back to the per-process LRU when the body ends without an error.
        """
        key = (*self._cache_key(), self.threads) if reuse else None
        opened = _take_open(key) if key is not None else None
        if opened is not None and self._cached_index() is None:
            opened[0].close()
            opened = None
        if opened is None:
            container = av.open(str(self.path), mode="r")
            if not container.streams.video:
                container.close()
                raise CorruptVideoError(f"{self.path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO" if self.threads > 1 else "SLICE"
            stream.codec_context.thread_count = self.threads
            opened = (container, stream, VideoReformatter())
        try:
            yield opened
        except BaseException:
            opened[0].close()
            raise
        if key is None:
            opened[0].close()
        else:
            _give_back_open(key, opened)

    def _cache_key(self) -> tuple[str, int, int]:
        stat = self.path.stat()
        return str(self.path.resolve()), stat.st_size, stat.st_mtime_ns

    def _remember(self, index: VideoIndex) -> None:
        self._index = index
        key = self._cache_key()
        _INDEX_CACHE[key] = index
        _INDEX_CACHE.move_to_end(key)
        while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)

    def _cached_index(self) -> VideoIndex | None:
        if self._index is None:
            self._index = _INDEX_CACHE.get(self._cache_key())
        return self._index

    def _known_index(self) -> VideoIndex:
        """The index, opening the file only when this process has not indexed it yet."""
        with _decode_errors(self.path):
            index = self._cached_index()
            if index is None:
                with self._open() as (container, stream, _):
                    index = self._get_index(container, stream)
            return index

    def _get_index(self, container, stream) -> VideoIndex:
        if self._cached_index() is None:
            index = index_from_container(stream) or scan_packets(container, stream, self.path)
            self._remember(index)
        return self._index

    def _to_array(self, frame: av.VideoFrame, reformatter: VideoReformatter) -> np.ndarray:
        """The frame as ``H×W×3`` RGB (a view of the converted frame's buffer)."""
        width, height = _output_size(frame.width, frame.height, self.short_side)
        return reformatter.reformat(
            frame, width, height, "rgb24", interpolation="AREA", threads=self.threads
        ).to_ndarray()

    def _decode_by_stamps(self, container, stream, index, wanted, clip, reformatter) -> None:
        """Seek + forward decode per group of nearby wanted frames."""
        key_slot = np.searchsorted(index.key_display, wanted, side="right") - 1
        key_display = np.where(key_slot >= 0, index.key_display[np.maximum(key_slot, 0)], 0)
        group_start = 0
        for end in range(1, len(wanted) + 1):
            if end < len(wanted) and key_display[end] - wanted[end - 1] - 1 < SEEK_MIN_SKIP:
                continue  # decoding on to the next wanted frame is cheaper than seeking
            group, slot = wanted[group_start:end], key_slot[group_start]
            seek_ts = index.key_seek_ts[slot] if slot >= 0 else index.stamps[0]
            # a seek that overshoots (timestamps mismatch) retries from the keyframe before,
            # then from the first frame; every attempt checks each decoded timestamp
            tries = [seek_ts]
            if slot >= 1:
                tries.append(index.key_seek_ts[slot - 1])
            if slot >= 2:
                tries.append(index.key_seek_ts[0])
            for attempt, ts in enumerate(tries):
                try:
                    self._decode_group(container, stream, index, group, ts, clip, reformatter)
                    break
                except _TimestampMismatchError:
                    if attempt == len(tries) - 1:
                        raise
            group_start = end

    def _decode_group(self, container, stream, index, group, seek_ts, clip, reformatter) -> None:
        """Seeks to ``seek_ts`` and decodes up to the last frame of ``group``.

        Packets whose own timestamp names an unwanted frame are decoded with ``skip_frame
        NONREF``: the decoder drops them if no other frame refers to them (1 thread only, where
        the setting applies to exactly the packet sent next).
        """
        container.seek(int(seek_ts), stream=stream, backward=True, any_frame=False)
        stamps, stamp_name, codec = index.stamps, index.stamp, stream.codec_context
        first_ts, last_ts = int(stamps[group[0]]), int(stamps[group[-1]])
        group_set = set(group.tolist())
        wanted_ts = set(stamps[group].tolist()) if self.threads == 1 else None
        previous, skipping = None, False
        try:
            for packet in container.demux(stream):
                if wanted_ts is not None:
                    named = getattr(packet, stamp_name)
                    skip = named is not None and not packet.is_keyframe and named not in wanted_ts
                    if skip != skipping:
                        codec.skip_frame, skipping = ("NONREF" if skip else "DEFAULT"), skip
                for frame in _decode_packet(codec, packet):
                    stamp = getattr(frame, stamp_name)
                    if stamp is None or (previous is None and stamp > first_ts):
                        raise _TimestampMismatchError(
                            f"first frame after seek: {stamp} > {first_ts}"
                        )
                    if previous is not None and stamp <= previous:
                        raise _TimestampMismatchError(
                            f"{stamp_name} go backwards: {previous}, {stamp}"
                        )
                    display = int(stamps.searchsorted(stamp))
                    if display >= index.n_frames or stamps[display] != stamp:
                        raise _TimestampMismatchError(
                            f"decoded {stamp_name} {stamp} is not indexed"
                        )
                    previous = stamp
                    if display in group_set and clip.wants(display):
                        clip.put(display, self._to_array(frame, reformatter))
                    if stamp >= last_ts:
                        return
        finally:
            if skipping:
                codec.skip_frame = "DEFAULT"
        raise CorruptVideoError(f"{self.path}: decoding stopped before frame {group[-1]}")

    def _decode_counting(self, container, stream, wanted, clip, reformatter) -> None:
        """Decodes from the first frame, counting frames (exact whatever the timestamps)."""
        last = int(wanted[-1])
        for display, frame in enumerate(container.decode(stream)):
            if clip.wants(display):
                clip.put(display, self._to_array(frame, reformatter))
            if display >= last:
                return
        raise CorruptVideoError(f"{self.path}: decoding stopped before frame {last}")
