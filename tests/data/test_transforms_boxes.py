"""Box-aware AVA transforms: hand-computed boxes and boxes that follow the image content."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidssl.data.transforms.boxes import (
    ava_test_transform,
    ava_train_transform,
    ava_val_transform,
    crop_with_boxes,
    finish_clip,
    flip_with_boxes,
    jitter_size,
    normalised_to_pixels,
    scale_short_side,
)


def _clip(height: int, width: int) -> torch.Tensor:
    return torch.zeros(3, 2, height, width, dtype=torch.uint8)


def test_normalised_boxes_to_pixels_are_clipped_to_the_last_pixel() -> None:
    boxes = normalised_to_pixels(np.array([[0.1, 0.2, 1.0, 1.0]]), 100, 200)
    assert boxes.tolist() == [[20.0, 20.0, 199.0, 99.0]]


def test_short_side_scale_uses_one_factor_from_the_floored_long_side() -> None:
    clip, boxes = scale_short_side(_clip(90, 200), np.array([[10.0, 10.0, 100.0, 50.0]]), 112)
    assert tuple(clip.shape[-2:]) == (112, 248)  # floor(200 / 90 * 112) = 248
    assert np.allclose(boxes, [[12.4, 12.4, 124.0, 62.0]])  # x 248/200 on both axes
    same, kept = scale_short_side(_clip(112, 150), np.array([[1.0, 2.0, 3.0, 4.0]]), 112)
    assert tuple(same.shape[-2:]) == (112, 150) and kept.tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_crop_shifts_and_clips_boxes() -> None:
    clip, boxes = crop_with_boxes(
        _clip(150, 200), np.array([[30.0, 5.0, 200.0, 100.0]]), 10, 20, 112
    )
    assert tuple(clip.shape[-2:]) == (112, 112)
    assert boxes.tolist() == [[10.0, 0.0, 111.0, 90.0]]


def test_flip_maps_x_to_width_minus_one_minus_x() -> None:
    clip = torch.arange(4, dtype=torch.uint8).reshape(1, 1, 1, 4).expand(3, 2, 2, 4)
    flipped, boxes = flip_with_boxes(clip, np.array([[10.0, 5.0, 40.0, 50.0]]))
    assert flipped[0, 0, 0].tolist() == [3, 2, 1, 0]
    assert boxes.tolist() == [[4 - 1 - 40.0, 5.0, 4 - 1 - 10.0, 50.0]]


def test_val_transform_scales_then_centre_crops() -> None:
    clip, boxes = ava_val_transform(_clip(120, 160), np.array([[40.0, 12.0, 120.0, 96.0]]))
    assert tuple(clip.shape[-2:]) == (112, 112)
    # short side 120 -> 112, long 160 -> floor(149.33) = 149, factor 149/160; left = ceil(37/2)
    factor = 149 / 160
    expected = [40 * factor - 19, 12 * factor, 120 * factor - 19, 96 * factor]
    assert np.allclose(boxes, [expected])


def test_test_transform_keeps_the_full_frame() -> None:
    clip, boxes = ava_test_transform(_clip(224, 398), np.array([[0.0, 0.0, 397.0, 223.0]]))
    assert tuple(clip.shape[-2:]) == (112, 199)
    assert np.allclose(boxes, [[0.0, 0.0, 397 * 199 / 398, 223 * 199 / 398]])


def test_finish_clip_normalises_with_045_0225() -> None:
    clip = torch.full((3, 1, 2, 2), 255, dtype=torch.uint8)
    out, boxes = finish_clip(clip, np.array([[-1.0, 0.0, 5.0, 1.0]]))
    assert torch.allclose(out, torch.full_like(out, (1 - 0.45) / 0.225))
    assert boxes.tolist() == [[0.0, 0.0, 1.0, 1.0]]


def test_jitter_sizes_are_in_range_and_uniform_in_inverse_size() -> None:
    rng = np.random.default_rng(0)
    sizes = np.array([jitter_size(rng, 256, 320) for _ in range(4000)])
    assert sizes.min() >= 256 and sizes.max() <= 320
    # 1/size is uniform on [1/320, 1/256]: half of the draws fall below 1/mean-of-inverses
    threshold = 1 / ((1 / 256 + 1 / 320) / 2)  # 284.4
    assert abs(np.mean(sizes > threshold) - 0.5) < 0.03


@pytest.mark.parametrize("seed", range(6))
def test_train_transform_boxes_follow_the_content(seed: int) -> None:
    height, width = 160, 200
    clip = torch.zeros(3, 1, height, width, dtype=torch.uint8)
    clip[:, :, 50:111, 60:141] = 255  # white rows 50..110, columns 60..140
    box = normalised_to_pixels(
        np.array([[60 / width, 50 / height, 141 / width, 111 / height]]), height, width
    )
    out, boxes = ava_train_transform(clip, box, np.random.default_rng(seed))
    assert tuple(out.shape[-2:]) == (112, 112)
    white = torch.nonzero(out[0, 0] > 127)
    if len(white) == 0:
        assert boxes[0, 0] == boxes[0, 2] or boxes[0, 1] == boxes[0, 3]  # cropped away
        return
    top, left = white.min(0).values.tolist()
    bottom, right = white.max(0).values.tolist()
    assert np.allclose(boxes[0], [left, top, right, bottom], atol=2.5)


def test_train_flip_probability_and_crop_offsets() -> None:
    rng = np.random.default_rng(1)
    clip = torch.zeros(3, 1, 20, 20, dtype=torch.uint8)
    clip[0] = torch.arange(20, dtype=torch.uint8)[None, None, :]  # channel 0 = column
    clip[1] = torch.arange(20, dtype=torch.uint8)[None, :, None]  # channel 1 = row
    flips, lefts, tops = 0, set(), set()
    for _ in range(400):
        out, _ = ava_train_transform(clip, np.zeros((0, 4)), rng, jitter=(20, 20), crop_size=8)
        columns = out[0, 0, 0].tolist()
        flipped = columns[0] > columns[1]
        flips += flipped
        lefts.add(columns[-1] if flipped else columns[0])
        tops.add(int(out[1, 0, 0, 0]))
    assert abs(flips / 400 - 0.5) < 0.08
    # offsets are drawn from [0, 20 - 8) like np.random.randint in the reference: 12 is never used
    assert lefts == set(range(12)) and tops == set(range(12))
