"""Per-stream augmentation of two-stream data: flow shares the RGB views' geometry only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidssl.data.dataset_builder import build_view_policy, flow_photometric
from vidssl.data.transforms.compose import (
    ColorJitter,
    Compose,
    HorizontalFlip,
    Normalize,
    RandomResizedCrop,
)
from vidssl.data.transforms.presets import PerClipViews
from vidssl.errors import ConfigError


def _gradient_clip() -> torch.Tensor:
    """uint8 T×H×W×C, 8×8: channel 0 rises left to right, so a flip is visible in any view."""
    x = np.arange(8, dtype=np.uint8)[None, None, :, None] * 30 + 10
    clip = np.broadcast_to(x, (2, 8, 8, 1)).repeat(3, axis=3).copy()
    clip[..., 1] = 90
    clip[..., 2] = np.arange(8, dtype=np.uint8)[None, :, None] * 20
    return torch.from_numpy(clip)


def _policy(photometric_on_flow: bool) -> PerClipViews:
    # whole-frame crop at the frame's size (no resampling): only the flip is geometric and random;
    # the strong pipeline always changes brightness
    def steps(jitter: bool) -> Compose:
        crop = RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(1.0, 1.0))
        tail = [HorizontalFlip(), Normalize("none")]
        photo = [ColorJitter(0.4, 0.0, 0.0, 0.0, p=1.0)] if jitter else []
        return Compose([crop, *photo, *tail], photometric_on_flow=photometric_on_flow)

    return PerClipViews(2, steps(True), steps(False), p_base=1.0)


def test_flow_views_share_the_flips_and_skip_the_photometric_steps():
    clip = _gradient_clip()
    plain = clip.permute(3, 0, 1, 2).float() / 255  # C×T×H×W, no photometric change
    flipped_seen = 0
    for seed in range(40):
        views = _policy(False)([clip, clip], np.random.default_rng(seed), flow_clips=[clip, clip])
        for rgb, flow in zip(views.views, views.flow_views):
            flipped = torch.equal(flow, plain.flip(-1))
            assert flipped or torch.equal(flow, plain)  # pixel-exact, un-jittered
            flipped_seen += flipped
            assert not torch.equal(rgb, flow)  # RGB got its brightness change
            # the RGB view was flipped exactly when the flow view was (brightness keeps order)
            rgb_rises = bool(rgb[0, 0, 0, -1] > rgb[0, 0, 0, 0])
            assert rgb_rises == (not flipped)
    assert 10 < flipped_seen < 70  # both flips occur (p 1/2 over 80 views)


def test_default_gives_flow_the_same_photometric_draws_as_rgb():
    clip = _gradient_clip()
    for seed in range(10):
        views = _policy(True)([clip, clip], np.random.default_rng(seed), flow_clips=[clip, clip])
        for rgb, flow in zip(views.views, views.flow_views):
            assert torch.equal(rgb, flow)  # the references: the whole pipeline on flow


def test_builder_default_is_unchanged_and_null_turns_photometric_off():
    assert flow_photometric("base", "") and flow_photometric("coclr", "coclr")
    assert not flow_photometric("base", "null")
    with pytest.raises(ConfigError, match=r"data.flow_augmentation=.base. with data.augmentation"):
        flow_photometric("null", "base")
    default = build_view_policy("base", 2, 16)
    per_stream = build_view_policy("base", 2, 16, photometric_on_flow=False)
    assert default.base.photometric_on_flow and default.null.photometric_on_flow
    assert not per_stream.base.photometric_on_flow and not per_stream.null.photometric_on_flow
    # the same draws: only what flow receives changes, so RGB views are bit-identical
    clip = _gradient_clip()
    a = default([clip, clip], np.random.default_rng(3), flow_clips=[clip, clip])
    b = per_stream([clip, clip], np.random.default_rng(3), flow_clips=[clip, clip])
    assert all(torch.equal(x, y) for x, y in zip(a.views, b.views))
