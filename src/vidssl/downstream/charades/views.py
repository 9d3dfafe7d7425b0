"""Charades clip geometry (PySlowFast ``charades.py`` / ``utils.spatial_sampling``, severe.md §7).

Temporal: a clip is ``num_frames`` indices ``start + k·stride`` clamped to ``[0, L−1]``.
Training draws ``start`` uniformly from ``[0, L − span]`` (from ``[L − span, 0]`` when the video is
shorter than the span ``(num_frames − 1)·stride + 1``: negative starts then repeat frame 0); test
view ``i`` of ``n`` starts at ``round(i · max(L − span, 0) / (n − 1))``.

Spatial: training rescales the short side to ``round(1 / U(1/max, 1/min))`` (inverse-uniform),
the long side to ``floor(long/short · size)``, takes a random crop (offset ``randint(0, H − crop)``,
exclusive upper end as in numpy) and flips with probability ½; test rescales the short side to
the crop size and takes crop ``j`` of 3 along the long side (start, centre ``ceil``, end).
"""

from __future__ import annotations

import math

import numpy as np


def clip_span(num_frames: int, stride: int) -> int:
    """Frames covered by a clip: ``(num_frames − 1)·stride + 1``."""
    return (num_frames - 1) * stride + 1


def clip_indices(start: int, n_frames: int, num_frames: int, stride: int) -> np.ndarray:
    """``start + k·stride`` for ``k < num_frames``, clamped to ``[0, n_frames − 1]``."""
    raw = start + stride * np.arange(num_frames, dtype=np.int64)
    return np.clip(raw, 0, n_frames - 1)


def train_start(n_frames: int, num_frames: int, stride: int, rng: np.random.Generator) -> int:
    """Random start of a training clip (may be negative for short videos, see module doc)."""
    span = clip_span(num_frames, stride)
    low, high = sorted((0, n_frames - span))
    return int(rng.integers(low, high + 1))


def test_starts(n_frames: int, num_frames: int, stride: int, n_views: int) -> list[int]:
    """Starts of the ``n_views`` test clips: ``round(i · max(L − span, 0) / (n_views − 1))``."""
    gap = max(n_frames - clip_span(num_frames, stride), 0) / max(n_views - 1, 1)
    return [round(gap * i) for i in range(n_views)]


def inverse_uniform_side(uniform: float, min_size: int, max_size: int) -> int:
    """Short side for a ``U(0, 1)`` draw: ``round(1 / (1/max + u·(1/min − 1/max)))``.

    This is numpy's ``uniform(1/max, 1/min)`` followed by ``round(1/x)``: u=0 gives ``max_size``,
    u→1 gives ``min_size``; smaller sides are more likely than under a uniform draw.
    """
    low, high = 1.0 / max_size, 1.0 / min_size
    return round(1.0 / (low + uniform * (high - low)))


def scaled_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(height, width)`` after rescaling the short side to ``short_side`` (long side floored)."""
    if width < height:
        return math.floor(height / width * short_side), short_side
    if height < width:
        return short_side, math.floor(width / height * short_side)
    return short_side, short_side


def uniform_crop_offset(height: int, width: int, size: int, index: int) -> tuple[int, int]:
    """``(top, left)`` of test crop ``index`` ∈ {0, 1, 2} along the long side."""
    top = math.ceil((height - size) / 2)
    left = math.ceil((width - size) / 2)
    if height > width:
        top = {0: 0, 1: top, 2: height - size}[index]
    else:
        left = {0: 0, 1: left, 2: width - size}[index]
    return top, left


def random_crop_offset(
    height: int, width: int, size: int, rng: np.random.Generator
) -> tuple[int, int]:
    """Random ``(top, left)``: ``randint(0, H − size)`` (upper end excluded), 0 when equal."""
    top = int(rng.integers(0, height - size)) if height > size else 0
    left = int(rng.integers(0, width - size)) if width > size else 0
    return top, left
