"""Clip transforms that carry person boxes along (AVA), with the reference's box arithmetic.

Clips are ``C×T×H×W`` tensors; boxes are ``[K, 4]`` float arrays ``x1, y1, x2, y2`` in pixels with
the reference's inclusive-pixel conventions (PySlowFast ``cv2_transform``):

* boxes are clipped to ``[0, W-1] × [0, H-1]``;
* a short-side resize scales all four coordinates by one factor, ``new_long / long`` with the new
  long side floored (``scale_boxes``);
* a horizontal flip maps ``x`` to ``W - 1 - x`` (and swaps ``x1``/``x2``);
* a crop subtracts its offsets, then boxes are clipped to the crop.

Frames are resized bilinearly without antialiasing (cv2 ``INTER_LINEAR``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vidssl.data.transforms.ops import crop, hflip, normalize, resize, to_float
from vidssl.errors import DataError

AVA_MEAN = (0.45, 0.45, 0.45)
AVA_STD = (0.225, 0.225, 0.225)


def normalised_to_pixels(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalised ``[0, 1]`` boxes to pixels of a ``height × width`` frame, clipped to it."""
    pixels = np.asarray(boxes, dtype=np.float64) * np.array([width, height, width, height])
    return clip_boxes(pixels, height, width)


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boxes clipped to ``x ∈ [0, width-1]``, ``y ∈ [0, height-1]`` (a new array)."""
    out = np.array(boxes, dtype=np.float64)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0.0, width - 1.0)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0.0, height - 1.0)
    return out


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(new_height, new_width)`` with the short side ``size`` and the long side floored."""
    if width < height:
        return math.floor(height / width * size), size
    return size, math.floor(width / height * size)


def scale_short_side(
    clip: torch.Tensor, boxes: np.ndarray, size: int
) -> tuple[torch.Tensor, np.ndarray]:
    """Resizes the short side to ``size``; boxes scale by ``new_long / long`` (the reference)."""
    height, width = clip.shape[-2:]
    if min(height, width) == size:
        return clip, np.array(boxes, dtype=np.float64)
    new_height, new_width = short_side_size(height, width, size)
    factor = new_height / height if width < height else new_width / width
    return resize(clip, (new_height, new_width), antialias=False), np.asarray(boxes) * factor


def crop_with_boxes(
    clip: torch.Tensor, boxes: np.ndarray, top: int, left: int, size: int
) -> tuple[torch.Tensor, np.ndarray]:
    """The ``size × size`` crop at ``(top, left)``; boxes shifted and clipped to it."""
    shifted = np.asarray(boxes, dtype=np.float64) - np.array([left, top, left, top])
    return crop(clip, top, left, size, size), clip_boxes(shifted, size, size)


def flip_with_boxes(clip: torch.Tensor, boxes: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Mirrors the clip left-right; ``x -> W - 1 - x`` with ``x1``/``x2`` swapped."""
    width = clip.shape[-1]
    boxes = np.asarray(boxes, dtype=np.float64)
    flipped = boxes.copy()
    flipped[:, 0] = width - 1 - boxes[:, 2]
    flipped[:, 2] = width - 1 - boxes[:, 0]
    return hflip(clip), flipped


def _check_fits(clip: torch.Tensor, size: int) -> None:
    height, width = clip.shape[-2:]
    if min(height, width) < size:
        raise DataError(f"a {height}×{width} frame is smaller than the {size}×{size} crop")


def jitter_size(rng: np.random.Generator, low: int, high: int) -> int:
    """The reference's short-side jitter: ``round(1 / U(1/high, 1/low))``."""
    return round(1.0 / rng.uniform(1.0 / high, 1.0 / low))


def ava_train_transform(
    clip: torch.Tensor,
    boxes: np.ndarray,
    rng: np.random.Generator,
    jitter: tuple[int, int] = (256, 320),
    crop_size: int = 112,
    flip_probability: float = 0.5,
) -> tuple[torch.Tensor, np.ndarray]:
    """Train augmentation: short-side jitter, random crop, horizontal flip (boxes follow).

    The crop offset is drawn in ``[0, W - size)`` (``np.random.randint``'s range in the reference).
    """
    clip, boxes = scale_short_side(clip, boxes, jitter_size(rng, *jitter))
    _check_fits(clip, crop_size)
    height, width = clip.shape[-2:]
    top = 0 if height == crop_size else int(rng.integers(0, height - crop_size))
    left = 0 if width == crop_size else int(rng.integers(0, width - crop_size))
    clip, boxes = crop_with_boxes(clip, boxes, top, left, crop_size)
    if rng.uniform() < flip_probability:
        clip, boxes = flip_with_boxes(clip, boxes)
    return clip, boxes


def ava_val_transform(
    clip: torch.Tensor, boxes: np.ndarray, crop_size: int = 112
) -> tuple[torch.Tensor, np.ndarray]:
    """Validation during training: short side to ``crop_size``, centre crop (offsets ceil'd)."""
    clip, boxes = scale_short_side(clip, boxes, crop_size)
    height, width = clip.shape[-2:]
    top = math.ceil((height - crop_size) / 2)
    left = math.ceil((width - crop_size) / 2)
    return crop_with_boxes(clip, boxes, top, left, crop_size)


def ava_test_transform(
    clip: torch.Tensor, boxes: np.ndarray, size: int = 112
) -> tuple[torch.Tensor, np.ndarray]:
    """Final test: short side to ``size``, the full frame (no crop)."""
    return scale_short_side(clip, boxes, size)


def finish_clip(clip: torch.Tensor, boxes: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """uint8 → float /255, normalised by 0.45/0.225; boxes clipped to the final frame."""
    height, width = clip.shape[-2:]
    return normalize(to_float(clip), AVA_MEAN, AVA_STD), clip_boxes(boxes, height, width)
