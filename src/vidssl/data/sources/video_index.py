"""Where the frames of a video stream are, learnt without decoding (for `VideoFile`).

The demuxer's own index serves when it is complete and decode order is display order (MP4, AVI
without B-frames); otherwise one scan of the packets names frames by their pts, or, when the pts
cannot name frames (made-up AVI timestamps with B-frames), says that reads must count frames.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import av
import numpy as np

from vidssl.errors import CorruptVideoError


@dataclass(frozen=True)
class VideoIndex:
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


_NO_KEYS = np.zeros(0, np.int64)


def frame_rate(stream: av.VideoStream) -> float:
    """Average frames per second of ``stream`` (0.0 if unknown)."""
    return float(stream.average_rate or stream.guessed_rate or 0)


def index_from_container(stream: av.VideoStream) -> VideoIndex | None:
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
    return VideoIndex(
        len(stamps), stamps, "dts", key_display, stamps[key_display], frame_rate(stream)
    )


def scan_packets(container: av.container.InputContainer, stream, path: object) -> VideoIndex:
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
        return VideoIndex(len(entries), _NO_KEYS, None, _NO_KEYS, _NO_KEYS, frame_rate(stream))
    pts_array = np.array(pts, np.int64)
    display = np.empty(len(pts), np.int64)
    display[np.argsort(pts_array, kind="stable")] = np.arange(len(pts))
    # seek to a keyframe by its own pts: seeking by its (smaller) dts made the MP4 demuxer land one
    # keyframe early (a whole GOP decoded for nothing); the reader catches a seek that overshoots
    keys = sorted((display[j], p) for j, (p, _, key) in enumerate(entries) if key)
    return VideoIndex(
        n_frames=len(pts),
        stamps=np.sort(pts_array),
        stamp="pts",
        key_display=np.array([display for display, _ in keys], np.int64),
        key_seek_ts=np.array([ts for _, ts in keys], np.int64),
        frame_rate=frame_rate(stream),
    )


def _check_not_truncated(container, stream, n_raw: int, entries: list, path: object) -> None:
    """Raises `CorruptVideoError` when the headers promise more video than the file holds."""
    if stream.frames and n_raw < stream.frames:
        raise CorruptVideoError(
            f"{path}: truncated, header lists {stream.frames} frames, has {n_raw}"
        )
    rate = frame_rate(stream)
    timestamps = [entry[0] for entry in entries if entry[0] is not None]
    if stream.frames or len(container.streams) != 1 or not container.duration or rate <= 0:
        return  # with other streams, the container duration need not be the video's
    span = 0.0
    if timestamps and stream.time_base is not None:
        span = float((max(timestamps) - min(timestamps)) * stream.time_base) + 1.0 / rate
    declared = container.duration / av.time_base
    if span < 0.9 * declared - 0.1:
        raise CorruptVideoError(f"{path}: truncated, {span:.2f} s of {declared:.2f} s present")
