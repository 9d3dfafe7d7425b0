from __future__ import annotations

import numpy as np
import pytest

from vidssl.data.sampling import (
    ClipInfo,
    MultiRandomClips,
    RandomClip,
    SlidingWindows,
    UniformClips,
    VcpTuples,
    clip_indices,
    coclr_min_frames,
    left_padded_indices,
    sample_two_stream,
)
from vidssl.errors import ConfigError, CorruptVideoError


def _indices(clips: list[ClipInfo]) -> list[list[int]]:
    return [c.indices.tolist() for c in clips]


def test_left_padding_by_hand() -> None:
    # n=20, seq_len=32, ds=1: 12 padding zeros, then every frame 0..19.
    assert left_padded_indices(0, 32, 1, 20).tolist() == [0] * 12 + list(range(20))
    # offset 1, ds 2: wanted 1, 3, ..., 31; those < 20 are 1..19 (10 frames) -> 6 zeros first.
    assert left_padded_indices(1, 16, 2, 20).tolist() == [0] * 6 + list(range(1, 20, 2))
    # nothing below n_frames: all padding.
    assert left_padded_indices(1, 4, 2, 1).tolist() == [0, 0, 0, 0]


def test_random_clip_short_video_is_left_padded() -> None:
    (clip,) = RandomClip(32)(20, np.random.default_rng(3))
    assert clip.indices.dtype == np.int64
    assert clip.indices.tolist() == [0] * 12 + list(range(20))
    assert (clip.start, clip.end, clip.clip_index) == (0, 20, 0)


def test_random_clip_short_video_random_offset() -> None:
    # 20 frames at ds 2 give 10 strided frames, left-padded with frame 0 to 16; the stride's
    # phase (start 0 or 1) is drawn uniformly
    rng = np.random.default_rng(2)
    seen = []
    for _ in range(400):
        (clip,) = RandomClip(16, ds=2)(20, rng)
        seen.append(clip.indices.tolist())
    even = [0] * 6 + list(range(0, 20, 2))
    odd = [0] * 6 + list(range(1, 20, 2))
    assert all(s in (even, odd) for s in seen)
    assert abs(sum(s == odd for s in seen) - 200) <= 40


def test_random_clip_exactly_span_long_is_not_padded() -> None:
    (clip,) = RandomClip(32)(32, np.random.default_rng(0))
    assert clip.indices.tolist() == list(range(32))


def test_random_clip_starts_are_uniform_over_the_reference_range() -> None:
    # CoCLR draws start from range(n_frames − seq_len·ds): 0..83 for 8 frames at ds 2 of 100
    # (start 84 would also fit, spanning frames 84..98; the reference never draws it)
    rng = np.random.default_rng(4)
    starts = []
    for _ in range(8500):
        (clip,) = RandomClip(8, ds=2)(100, rng)
        start = clip.indices[0]
        assert clip.indices.tolist() == [start + 2 * i for i in range(8)]
        assert (clip.start, clip.end) == (start, start + 15)
        starts.append(int(start))
    counts = np.bincount(starts, minlength=84)
    assert len(counts) == 84 and counts.min() > 50 and counts.max() < 160  # ~101 each


def test_random_clip_start_bounds_are_coclr_exclusive() -> None:
    # CoCLR: start ~ U{0, ..., n - T*ds - 1}; for n=12, T=8 that is {0, 1, 2, 3}, never 4.
    rng = np.random.default_rng(0)
    starts = {RandomClip(8)(12, rng)[0].start for _ in range(400)}
    assert starts == {0, 1, 2, 3}


def test_multi_random_clips_are_independent_draws() -> None:
    clips = MultiRandomClips(2, 4, ds=3)(50, np.random.default_rng(7))
    replay = np.random.default_rng(7)
    first, second = (int(replay.integers(50 - 12)) for _ in range(2))
    assert _indices(clips) == [
        [first + 3 * i for i in range(4)],
        [second + 3 * i for i in range(4)],
    ]
    assert [c.clip_index for c in clips] == [0, 1]
    assert clip_indices(clips).shape == (2, 4)


def test_uniform_clips_pcl_linspace_by_hand() -> None:
    # centres linspace(8, 92, 10) -> starts int(c - 8) = 0, 9.33, 18.67, 28, ... -> truncated.
    clips = UniformClips(10, 16)(100)
    assert [c.start for c in clips] == [0, 9, 18, 28, 37, 46, 56, 65, 74, 84]
    assert clips[-1].indices.tolist() == list(range(84, 100))
    assert [c.clip_index for c in clips] == list(range(10))


def test_uniform_clips_with_stride_and_short_video() -> None:
    # span 8 (4 frames, ds 2): centres linspace(4, 16, 3) -> starts 0, 6, 12.
    clips = UniformClips(3, 4, ds=2)(20)
    assert _indices(clips) == [[0, 2, 4, 6], [6, 8, 10, 12], [12, 14, 16, 18]]
    short = UniformClips(2, 16)(10)
    assert _indices(short) == [[0] * 6 + list(range(10))] * 2


def test_sliding_windows_coclr_stride() -> None:
    windows = SlidingWindows(32)(70)
    assert SlidingWindows(32).window_stride == 15
    assert [w.start for w in windows] == [0, 15, 30]
    assert windows[2].indices.tolist() == list(range(30, 62))
    assert _indices(SlidingWindows(32)(32)) == [list(range(32))]
    assert _indices(SlidingWindows(32)(20)) == [[0] * 12 + list(range(20))]
    assert SlidingWindows(2).window_stride == 1  # 2//2 - 1 = 0 is raised to 1
    assert [w.start for w in SlidingWindows(4, ds=2, stride=5)(20)] == [0, 5, 10]


def test_vcp_tuple_on_minimal_video() -> None:
    clips = VcpTuples()(64, np.random.default_rng(0))  # start must be 0; no room for a remote
    assert _indices(clips) == [list(range(0, 16)), list(range(24, 40)), list(range(48, 64))]
    buggy = VcpTuples(clip_stride=11)(64, np.random.default_rng(0))
    assert [c.start for c in buggy] == [0, 11, 22]


def test_vcp_remote_clip_one_sided_cases() -> None:
    # n = 96: start in 0..32; only start 0 leaves room after (80..95), only start 32 before (0..15).
    seen = {}
    for seed in range(200):
        clips = VcpTuples()(96, np.random.default_rng(seed))
        start = clips[0].start
        assert start == int(np.random.default_rng(seed).integers(33))
        if start in (0, 32):
            assert len(clips) == 4 and clips[3].clip_index == 3
            seen[start] = clips[3].indices.tolist()
        else:
            assert len(clips) == 3
    assert seen == {0: list(range(80, 96)), 32: list(range(0, 16))}


def test_vcp_remote_clip_keeps_its_distance() -> None:
    for seed in range(50):
        clips = VcpTuples()(300, np.random.default_rng(seed))
        start, remote = clips[0].start, clips[3]
        assert remote.end <= start - 16 or remote.start >= start + 64 + 16


def test_vcp_short_video_clamps_to_last_frame() -> None:
    clips = VcpTuples()(40, np.random.default_rng(0))
    assert clips[1].indices.tolist() == list(range(24, 40))
    assert clips[2].indices.tolist() == [39] * 16
    assert VcpTuples().min_frames == 64


def test_two_stream_uses_the_shorter_stream() -> None:
    clips = sample_two_stream(SlidingWindows(16, stride=7), 50, 49, np.random.default_rng(0))
    assert [c.start for c in clips] == [0, 7, 14, 21, 28]  # windows of a 49-frame video


def test_coclr_min_frames() -> None:
    assert coclr_min_frames(32) == 18  # UCF: n - 16 - 1 <= 0 is dropped, so 17 goes, 18 stays
    assert coclr_min_frames(32, kinetics=True) == 34


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        RandomClip(0)
    with pytest.raises(ConfigError):
        SlidingWindows(8, ds=2, stride=0)
    with pytest.raises(CorruptVideoError):
        RandomClip(8)(0, np.random.default_rng(0))
