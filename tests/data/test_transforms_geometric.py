from __future__ import annotations

import numpy as np
import pytest
import torch

from vidssl.data.transforms.compose import (
    CenterCrop,
    ColorJitter,
    Compose,
    CornerCrop,
    CropBox,
    HorizontalFlip,
    MultiCrop,
    RandomCrop,
    RandomResizedCrop,
    Resize,
    ToFloat,
)
from vidssl.data.transforms.ops import resize
from vidssl.errors import DataError


def _clip(n_frames: int = 4, height: int = 24, width: int = 32, seed: int = 0) -> torch.Tensor:
    """uint8 T×H×W×C frames that all differ."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n_frames, height, width, 3), dtype=np.uint8))


def test_random_resized_crop_boxes_follow_the_reference_ranges() -> None:
    # CoCLR's RandomSizedCrop (scale 0.2..1): area fraction U(0.2, 1), aspect U(3/4, 4/3) with
    # w and h swapped half the time, a uniformly placed box inside the frame.
    crop = RandomResizedCrop(16)
    height, width = 240, 320
    rng = np.random.default_rng(7)
    boxes = [crop.sample(rng, height, width) for _ in range(4000)]
    areas = np.array([b.height * b.width / (height * width) for b in boxes])
    aspects = np.array([b.width / b.height for b in boxes])
    assert all(0 <= b.top <= height - b.height and 0 <= b.left <= width - b.width for b in boxes)
    assert areas.min() >= 0.2 - 0.01 and areas.max() <= 1.0
    assert aspects.min() >= 3 / 4 - 0.02 and aspects.max() <= 4 / 3 + 0.02
    # the accepted boxes cover the whole range; on a square frame both orientations are equally
    # likely (on 240×320, tall boxes that do not fit are redrawn, so wide ones prevail)
    assert areas.min() < 0.22 and areas.max() > 0.95
    square = np.array([(b.width > b.height) - (b.width < b.height)
                       for b in (crop.sample(rng, 256, 256) for _ in range(4000))])  # fmt: skip
    assert abs(np.mean(square == 1) - np.mean(square == -1)) < 0.06
    # placement: the free room is used uniformly (mean of the relative offset ~ 1/2)
    room = [(b.left / (width - b.width)) for b in boxes if b.width < width - 20]
    assert abs(np.mean(room) - 0.5) < 0.03


def test_random_resized_crop_full_frame_and_fallback() -> None:
    rng = np.random.default_rng(0)
    full = RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert full.sample(rng, 10, 10) == CropBox(0, 0, 10, 10)
    # aspect 4 never fits 10×10 or 10×20 (w or h = round(sqrt(4·area)) > 20): fallback.
    never = RandomResizedCrop(4, scale=(1.0, 1.0), ratio=(4.0, 4.0))
    assert never.sample(rng, 10, 10) == CropBox(0, 0, 10, 10)
    assert never.sample(rng, 10, 20) == CropBox(0, 5, 10, 10)
    wide = RandomResizedCrop((4, 8), scale=(1.0, 1.0), ratio=(9.0, 9.0))
    assert wide.sample(rng, 10, 10) == CropBox(2, 0, 5, 10)  # largest centred 2:1 box


def test_random_resized_crop_applies_box_then_resize_to_every_frame() -> None:
    clip = _clip()
    crop = RandomResizedCrop(12, interpolation="bilinear")
    box = crop.sample(np.random.default_rng(4), 24, 32)
    out = crop.apply(clip, box)
    assert out.shape == (3, 4, 12, 12) and out.dtype == torch.uint8
    cut = clip[:, box.top : box.top + box.height, box.left : box.left + box.width].permute(
        3, 0, 1, 2
    )
    assert torch.equal(out, resize(cut, (12, 12), "bilinear"))
    for t in range(4):  # same box for every frame: frame t alone gives frame t of the clip
        assert torch.equal(crop.apply(clip[t : t + 1], box)[:, 0], out[:, t])


def test_random_crop_positions_and_pixels() -> None:
    clip = _clip()
    crop = RandomCrop((10, 12))
    box = crop.sample(np.random.default_rng(5), 24, 32)
    replay = np.random.default_rng(5)
    top, left = int(replay.integers(15)), int(replay.integers(21))
    assert box == CropBox(top, left, 10, 12)
    out = crop.apply(clip, box)
    assert torch.equal(out, clip[:, top : top + 10, left : left + 12].permute(3, 0, 1, 2))


def test_resize_short_side_and_exact() -> None:
    clip = _clip(2, 24, 32)
    assert Resize(16).apply(clip, None).shape == (3, 2, 16, 21)  # int(16·32/24) = 21
    assert Resize(16).output_size(None, 40, 30) == (21, 16)
    assert Resize((8, 9)).apply(clip, None).shape == (3, 2, 8, 9)
    assert torch.equal(Resize(24).apply(clip, None), clip.permute(3, 0, 1, 2))  # already 24


def test_centre_and_corner_boxes_by_hand() -> None:
    assert CenterCrop(16).sample(None, 24, 32) == CropBox(4, 8, 16, 16)
    # (49 - 16) / 2 = 16.5 rounds to 16 (Python's round-half-even, as CoCLR).
    assert CenterCrop(16).sample(None, 49, 32) == CropBox(16, 8, 16, 16)
    corners = {p: CornerCrop(16, p).sample(None, 24, 32) for p in ("top_left", "top_right")}
    corners |= {p: CornerCrop(16, p).sample(None, 24, 32) for p in ("bottom_left", "bottom_right")}
    assert [(b.top, b.left) for b in corners.values()] == [(0, 0), (0, 16), (8, 0), (8, 16)]
    with pytest.raises(DataError):
        CenterCrop(30).sample(None, 24, 32)


def test_horizontal_flip() -> None:
    clip = _clip()
    flip = HorizontalFlip(0.5)
    decisions = [flip.sample(np.random.default_rng(s)) for s in range(8)]
    assert decisions == [bool(np.random.default_rng(s).random() < 0.5) for s in range(8)]
    out = flip.apply(clip, True)
    assert torch.equal(out[:, :, :, 0], clip[:, :, 31].permute(2, 0, 1))
    assert torch.equal(flip.apply(clip, False), clip.permute(3, 0, 1, 2))


def test_ten_crop_positions_and_flips() -> None:
    clip = _clip()
    ten = MultiCrop(16, flips=True)
    params = ten.view_params(24, 32)
    assert [(b.top, b.left, f) for b, f in params] == [
        (4, 8, False), (0, 0, False), (0, 16, False), (8, 0, False), (8, 16, False),
        (4, 8, True), (0, 0, True), (0, 16, True), (8, 0, True), (8, 16, True),
    ]  # fmt: skip
    views = ten(clip)
    assert len(views) == 10 and all(v.shape == (3, 4, 16, 16) for v in views)
    top_right = clip[:, 0:16, 16:32].permute(3, 0, 1, 2)
    assert torch.equal(views[2], top_right) and torch.equal(views[7], top_right.flip(-1))
    assert len(MultiCrop(16)(clip)) == 5


def test_multi_crop_then_transform() -> None:
    views = MultiCrop(16, then=Compose([Resize(8), ToFloat()]))(_clip())
    assert all(v.shape == (3, 4, 8, 8) and v.dtype == torch.float32 for v in views)


def test_rgb_and_flow_share_geometry() -> None:
    rgb = _clip(3, 24, 32, seed=1)
    flow = 255 - rgb  # a "flow" clip tied pixel-by-pixel to the RGB clip
    pipeline = Compose([RandomResizedCrop(12, interpolation="bilinear"), HorizontalFlip()])
    for seed in range(6):
        params = pipeline.sample(np.random.default_rng(seed), 24, 32)
        rgb_out, flow_out = pipeline.apply_pair(rgb, flow, params)
        # bilinear weights sum to 1, so resizing commutes with 255 - x up to rounding.
        assert (rgb_out.int() + flow_out.int() - 255).abs().max() <= 1


def test_photometric_on_flow_flag() -> None:
    rgb, flow = _clip(2, 8, 8, 1), _clip(2, 8, 8, 2)
    jitter = ColorJitter(brightness=(2.0, 2.0), p=1.0)
    for flag, changed in ((True, True), (False, False)):
        pipeline = Compose([HorizontalFlip(1.0), jitter], photometric_on_flow=flag)
        params = pipeline.sample(np.random.default_rng(0), 8, 8)
        _, flow_out = pipeline.apply_pair(rgb, flow, params)
        plain = flow.permute(3, 0, 1, 2).flip(-1).float() / 255
        assert torch.equal(flow_out, (2 * plain).clamp(0, 1) if changed else plain)
    with pytest.raises(DataError):
        pipeline.apply_pair(rgb, _clip(2, 8, 6), params)
