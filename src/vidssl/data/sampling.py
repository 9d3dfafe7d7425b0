"""Clip samplers: which frame indices of a video make up each clip.

A sampler maps a video's frame count to a list of `ClipInfo` (frame indices plus the span they
cover). All randomness comes from the `numpy.random.Generator` passed in, so a dataset that seeds
one generator per item gets reproducible clips. The rules follow the reference code bases:

- `RandomClip` / `MultiRandomClips`: CoCLR/ViCC training clips (``frame_sampler`` and
  ``double_sampler``), including CoCLR's left padding of videos that are too short.
- `SlidingWindows`: CoCLR/ViCC test windows (stride ``seq_len·ds // 2 − 1``, 15 for 32×1).
- `UniformClips`: PCL/VCP's ``np.linspace`` clips for retrieval and test.
- `VcpTuples`: the 3-clip tuple (+ optional remote clip) of the VCP cloze pretext.

**Left padding (CoCLR).** When a video has ``n_frames <= seq_len·ds`` frames, the wanted indices
``offset + arange(seq_len)·ds`` are computed from ``offset = 0`` (test windows) or a random
``offset ∈ {0, …, ds−1}`` (training), every index ``>= n_frames`` is dropped, and the clip is
filled up *on the left* with frame 0. Example: ``n_frames=20, seq_len=32, ds=1`` gives twelve 0s
followed by ``0, 1, …, 19``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vidssl.errors import ConfigError, CorruptVideoError

__all__ = [
    "ClipInfo",
    "ClipSampler",
    "MultiRandomClips",
    "RandomClip",
    "SlidingWindows",
    "UniformClips",
    "VcpTuples",
    "clip_indices",
    "coclr_min_frames",
    "left_padded_indices",
    "sample_two_stream",
]


@dataclass(frozen=True)
class ClipInfo:
    """One clip of a video.

    Attributes:
        indices: int64 frame indices to read, in order (after padding; may repeat frame 0).
        start: first frame of the span the clip covers (padding frames count as frame 0).
        end: one past the last frame of the span.
        clip_index: position of this clip among the clips drawn for the video.
    """

    indices: np.ndarray
    start: int
    end: int
    clip_index: int


class ClipSampler(Protocol):
    """Anything that turns a frame count into clips."""

    def __call__(self, n_frames: int, rng: np.random.Generator) -> list[ClipInfo]:
        """Returns the clips of a video with ``n_frames`` frames."""
        ...


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ConfigError(f"sampler {name} must be a positive integer, got {value!r}")
    return int(value)


def _check_frames(n_frames: int) -> int:
    if n_frames < 1:
        raise CorruptVideoError(f"a video with {n_frames} frames has no clip to sample")
    return int(n_frames)


def _clip(indices: np.ndarray, clip_index: int) -> ClipInfo:
    indices = np.asarray(indices, dtype=np.int64)
    return ClipInfo(indices, int(indices.min()), int(indices.max()) + 1, clip_index)


def left_padded_indices(offset: int, seq_len: int, ds: int, n_frames: int) -> np.ndarray:
    """CoCLR's indices for a video too short for the span ``seq_len·ds``.

    Args:
        offset: first wanted index (CoCLR: 0 for test windows, ``U{0..ds−1}`` for training).
        seq_len: frames per clip.
        ds: temporal stride between frames.
        n_frames: frames in the video.

    Returns:
        int64 ``[seq_len]``: the wanted indices ``offset + arange(seq_len)·ds`` that are below
        ``n_frames``, preceded by as many 0s as were dropped.
    """
    wanted = offset + np.arange(seq_len, dtype=np.int64) * ds
    real = wanted[wanted < n_frames]
    padded = np.zeros(seq_len, dtype=np.int64)
    padded[seq_len - len(real) :] = real
    return padded


def coclr_min_frames(seq_len: int, ds: int = 1, *, kinetics: bool = False) -> int:
    """Smallest frame count CoCLR keeps in a dataset (shorter videos are dropped).

    UCF101/HMDB51 drop a video when ``n − seq_len//2·ds − 1 <= 0`` (at most half the clip may be
    padding); Kinetics drops it when ``n − seq_len·ds − 1 <= 0``.
    """
    span = seq_len * ds if kinetics else (seq_len // 2) * ds
    return span + 2


@dataclass(frozen=True)
class RandomClip:
    """One random clip (CoCLR/ViCC training, ``frame_sampler`` in train mode).

    ``start ~ U{0, …, n − seq_len·ds − 1}`` (the upper bound is exclusive in the reference:
    ``np.random.choice(range(n − seq_len·ds))``) and ``indices = start + arange(seq_len)·ds``.
    A video with ``n <= seq_len·ds`` frames is left-padded (see the module docstring) from a random
    offset ``U{0..ds−1}``; that offset is drawn even when ``ds == 1``.

    Args:
        seq_len: frames per clip.
        ds: temporal stride between frames.
    """

    seq_len: int
    ds: int = 1

    def __post_init__(self) -> None:
        _positive_int(self.seq_len, "seq_len")
        _positive_int(self.ds, "ds")

    @property
    def span(self) -> int:
        """Frames covered by one clip, ``seq_len·ds``."""
        return self.seq_len * self.ds

    def draw(self, n_frames: int, rng: np.random.Generator, clip_index: int = 0) -> ClipInfo:
        """Draws one clip, labelled ``clip_index``."""
        n_frames = _check_frames(n_frames)
        if n_frames - self.span <= 0:
            offset = int(rng.integers(self.ds))
            return _clip(left_padded_indices(offset, self.seq_len, self.ds, n_frames), clip_index)
        start = int(rng.integers(n_frames - self.span))
        return _clip(start + np.arange(self.seq_len) * self.ds, clip_index)

    def __call__(self, n_frames: int, rng: np.random.Generator) -> list[ClipInfo]:
        """Returns one random clip."""
        return [self.draw(n_frames, rng)]


@dataclass(frozen=True)
class MultiRandomClips:
    """``n_clips`` independent `RandomClip` draws (CoCLR's ``double_sampler`` for n_clips=2).

    The clips may overlap or even coincide; they are drawn in order with the same generator.
    """

    n_clips: int
    seq_len: int
    ds: int = 1

    def __post_init__(self) -> None:
        _positive_int(self.n_clips, "n_clips")
        RandomClip(self.seq_len, self.ds)  # validates seq_len and ds

    def __call__(self, n_frames: int, rng: np.random.Generator) -> list[ClipInfo]:
        """Returns ``n_clips`` random clips, ``clip_index`` 0, 1, …."""
        one = RandomClip(self.seq_len, self.ds)
        return [one.draw(n_frames, rng, i) for i in range(self.n_clips)]


@dataclass(frozen=True)
class UniformClips:
    """``n_clips`` deterministic, evenly spread clips (PCL/VCP retrieval and test).

    As in the reference (``for c in np.linspace(L/2, n − L/2, n_clips): start = int(c − L/2)``)
    with ``L = seq_len·ds``: centres are ``np.linspace(L/2, n − L/2, n_clips)`` and each start is
    ``int(centre − L/2)`` (truncated), clamped into ``[0, n − L]``. For ``ds = 1`` this is exactly
    PCL's rule. A video shorter than ``L`` makes every clip the left-padded clip from offset 0 (the
    reference would index frames with negative numbers there, i.e. wrap around to the video end).
    The generator is not used.
    """

    n_clips: int = 10
    seq_len: int = 16
    ds: int = 1

    def __post_init__(self) -> None:
        _positive_int(self.n_clips, "n_clips")
        _positive_int(self.seq_len, "seq_len")
        _positive_int(self.ds, "ds")

    def __call__(self, n_frames: int, rng: np.random.Generator | None = None) -> list[ClipInfo]:
        """Returns the ``n_clips`` clips in temporal order."""
        n_frames = _check_frames(n_frames)
        span = self.seq_len * self.ds
        if n_frames < span:
            padded = left_padded_indices(0, self.seq_len, self.ds, n_frames)
            return [_clip(padded, i) for i in range(self.n_clips)]
        centres = np.linspace(span / 2, n_frames - span / 2, self.n_clips)
        starts = np.clip((centres - span / 2).astype(np.int64), 0, n_frames - span)
        steps = np.arange(self.seq_len, dtype=np.int64) * self.ds
        return [_clip(int(s) + steps, i) for i, s in enumerate(starts)]


@dataclass(frozen=True)
class SlidingWindows:
    """All test windows of a video (CoCLR/ViCC ``frame_sampler`` in test mode).

    Starts are ``arange(0, n − seq_len·ds + 1, stride)`` with the reference's default stride
    ``seq_len·ds // 2 − 1`` (15 for 32×1; at least 1). A video with ``n <= seq_len·ds`` frames
    gives exactly one window: the left-padded clip from offset 0. The generator is not used.

    Args:
        seq_len: frames per window.
        ds: temporal stride between frames.
        stride: distance between window starts; None for the reference's default.
    """

    seq_len: int
    ds: int = 1
    stride: int | None = None

    def __post_init__(self) -> None:
        _positive_int(self.seq_len, "seq_len")
        _positive_int(self.ds, "ds")
        if self.stride is not None:
            _positive_int(self.stride, "stride")

    @property
    def window_stride(self) -> int:
        """The distance between consecutive window starts."""
        if self.stride is not None:
            return self.stride
        return max(self.seq_len * self.ds // 2 - 1, 1)

    def __call__(self, n_frames: int, rng: np.random.Generator | None = None) -> list[ClipInfo]:
        """Returns the windows in temporal order."""
        n_frames = _check_frames(n_frames)
        span = self.seq_len * self.ds
        if n_frames - span <= 0:
            return [_clip(left_padded_indices(0, self.seq_len, self.ds, n_frames), 0)]
        steps = np.arange(self.seq_len, dtype=np.int64) * self.ds
        starts = np.arange(0, n_frames - span + 1, self.window_stride)
        return [_clip(int(s) + steps, i) for i, s in enumerate(starts)]


@dataclass(frozen=True)
class VcpTuples:
    """A VCP cloze tuple: ``tuple_len`` clips in order, plus a remote clip when one fits.

    The tuple occupies ``span = clip_len·tuple_len + interval·(tuple_len − 1)`` frames (64 for
    16/8/3) from a start ``U{0, …, n − span}``; clip ``i`` starts at ``start + i·clip_stride``.
    The default ``clip_stride = clip_len + interval`` (24) gives three disjoint clips with an
    8-frame gap between them, as the VCP paper describes. The reference code (VCP and PCL) uses
    ``tuple_len + interval`` (11), so its clips overlap by 5 frames; pass ``clip_stride=11`` to
    reproduce that bug.

    The remote clip (``clip_index = tuple_len``, used by the "temporal remote shuffling" class)
    is a ``clip_len`` clip at least ``remote_distance`` frames before the tuple start
    (``start' ∈ [0, start − clip_len − remote_distance]``) or after its end
    (``start' ∈ [start + span + remote_distance, n − clip_len]``); when both sides have room one
    is picked with probability 1/2. The reference demands room on *both* sides (its one-sided
    branches are unreachable); here one side suffices. When neither side has room, only the
    tuple is returned and the caller must not pick the remote class (the reference then redraws
    the label from the other four classes, which is the same distribution).

    A video shorter than ``span`` (the reference drops these from its list; see `min_frames`)
    gets ``start = 0`` with indices clamped to the last frame.
    """

    clip_len: int = 16
    interval: int = 8
    tuple_len: int = 3
    remote_distance: int = 16
    clip_stride: int | None = None

    def __post_init__(self) -> None:
        _positive_int(self.clip_len, "clip_len")
        _positive_int(self.tuple_len, "tuple_len")
        if self.interval < 0 or self.remote_distance < 0:
            raise ConfigError("VCP interval and remote_distance must be >= 0")
        if self.clip_stride is not None:
            _positive_int(self.clip_stride, "clip_stride")

    @property
    def span(self) -> int:
        """Nominal frames covered by the tuple, ``clip_len·tuple_len + interval·(tuple_len−1)``."""
        return self.clip_len * self.tuple_len + self.interval * (self.tuple_len - 1)

    @property
    def min_frames(self) -> int:
        """Fewest frames a video needs for an unclamped tuple (the reference's list filter)."""
        return self.span

    def __call__(self, n_frames: int, rng: np.random.Generator) -> list[ClipInfo]:
        """Returns the tuple clips (``clip_index`` 0..tuple_len−1) and, if it fits, the remote."""
        n_frames = _check_frames(n_frames)
        stride = self.clip_stride if self.clip_stride is not None else self.clip_len + self.interval
        start = int(rng.integers(n_frames - self.span + 1)) if n_frames >= self.span else 0
        steps = np.arange(self.clip_len, dtype=np.int64)
        clips = [
            _clip(np.minimum(start + i * stride + steps, n_frames - 1), i)
            for i in range(self.tuple_len)
        ]
        sides: list[tuple[int, int]] = []
        before_last = start - self.clip_len - self.remote_distance
        if before_last >= 0:
            sides.append((0, before_last))
        after_first = start + self.span + self.remote_distance
        if after_first <= n_frames - self.clip_len:
            sides.append((after_first, n_frames - self.clip_len))
        if sides:
            low, high = sides[int(rng.integers(len(sides)))] if len(sides) > 1 else sides[0]
            remote_start = int(rng.integers(low, high + 1))
            clips.append(_clip(remote_start + steps, self.tuple_len))
        return clips


def sample_two_stream(
    sampler: ClipSampler, n_rgb: int, n_flow: int, rng: np.random.Generator
) -> list[ClipInfo]:
    """Draws clips valid for both an RGB video and its flow, so both read the same indices.

    As in CoCLR's two-stream datasets the clips are drawn on ``min(n_rgb, n_flow)`` frames
    (flow has ``n_rgb − 1`` frames: flow ``k`` is between frames ``k`` and ``k+1``), and the
    same indices are then read from both streams.
    """
    return sampler(min(int(n_rgb), int(n_flow)), rng)


def clip_indices(clips: Sequence[ClipInfo]) -> np.ndarray:
    """Stacks the indices of equally long clips into an int64 ``[n_clips, seq_len]`` array."""
    return np.stack([c.indices for c in clips])
