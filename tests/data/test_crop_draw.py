"""CoCLR's pretraining crop draw (``RandomSizedCrop``, ``consistent=False`` branch).

The reference draws ``area ~ U(0.2, 1)·H·W``, ``aspect ~ U(3/4, 4/3)``, rounds
``w = √(area·aspect)``, ``h = √(area/aspect)``, swaps them with probability 1/2 and, only if the
box fits, ``left ~ U{0..W−w}`` then ``top ~ U{0..H−h}``. If it does not fit, the whole frame is
resized to the output size. The uniforms are fed through a scripted generator and the boxes
worked out by hand below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidssl.data.dataset_builder import build_view_policy
from vidssl.data.transforms.compose import CropBox, RandomResizedCrop
from vidssl.data.transforms.presets import coclr_base, coclr_null
from vidssl.errors import ConfigError

H, W = 240, 320  # UCF101 frames


class ScriptedUniforms:
    """A generator whose draws come from a list of uniforms in [0, 1) (numpy's method names)."""

    def __init__(self, uniforms: list[float]) -> None:
        self.uniforms = list(uniforms)
        self.used = 0

    def _next(self) -> float:
        value = self.uniforms[self.used]
        self.used += 1
        return value

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._next()

    def random(self) -> float:
        return self._next()

    def integers(self, n: int) -> int:
        return int(self._next() * n)


# area fraction 0.2 + 0.8·0.5 = 0.6 -> 46080 px, aspect 3/4: w = round(√34560) = round(185.90)
# = 186, h = round(√61440) = round(247.87) = 248.
FITS_AFTER_SWAP = [0.5, 0.0, 0.1, 0.5, 0.2]  # swap -> 248 wide, 186 high: fits
TOO_TALL = [0.5, 0.0, 0.9]  # no swap -> 186 wide, 248 high > 240: does not fit


def test_a_box_that_fits_is_cut_where_the_uniforms_say() -> None:
    rng = ScriptedUniforms(FITS_AFTER_SWAP)
    box = RandomResizedCrop(128, draw="once").sample(rng, H, W)
    # left = ⌊0.5·(320−248+1)⌋ = ⌊36.5⌋ = 36, top = ⌊0.2·(240−186+1)⌋ = ⌊11.0⌋ = 11
    assert box == CropBox(top=11, left=36, height=186, width=248)
    assert rng.used == 5


def test_a_box_that_does_not_fit_gives_the_whole_frame_after_one_draw() -> None:
    rng = ScriptedUniforms(TOO_TALL + [0.0] * 10)
    box = RandomResizedCrop(128, draw="once").sample(rng, H, W)
    assert box == CropBox(top=0, left=0, height=H, width=W)
    assert rng.used == 3  # no position drawn, no second attempt


def test_full_area_at_4_3_swapped_is_the_whole_frame() -> None:
    # area 76800, aspect 4/3 -> 320×240; swapped -> 240 wide, 320 high: does not fit
    box = RandomResizedCrop(128, draw="once").sample(ScriptedUniforms([1.0, 1.0, 0.25]), H, W)
    assert box == CropBox(0, 0, H, W)


def test_the_retrying_draw_tries_again_instead() -> None:
    rng = ScriptedUniforms(TOO_TALL + FITS_AFTER_SWAP)
    box = RandomResizedCrop(128, draw="retry").sample(rng, H, W)
    assert box == CropBox(top=11, left=36, height=186, width=248)
    assert rng.used == 8


def test_the_retrying_draw_falls_back_to_a_centred_square() -> None:
    box = RandomResizedCrop(128, draw="retry").sample(ScriptedUniforms(TOO_TALL * 10), H, W)
    assert box == CropBox(top=0, left=40, height=240, width=240)


def test_the_whole_frame_is_squashed_to_the_output_size() -> None:
    frame = np.full((1, H, W, 3), 255, dtype=np.uint8)
    frame[:, :, :80] = 0  # left quarter black
    crop = RandomResizedCrop(64, draw="once", interpolation="bilinear")
    out = crop.apply(torch.from_numpy(frame), CropBox(0, 0, H, W))
    assert tuple(out.shape) == (3, 1, 64, 64)
    row = out[0, 0, 32].float()
    # squashed: black up to column 64·80/320 = 16 (a centred 240 box would end it at 64·40/240)
    assert row[:14].max() < 5 and row[18:].min() > 250


def _squash_probability(height: int, width: int) -> float:
    """P(no fit) of the reference draw, by a float64 grid over area and aspect (midpoints)."""
    n = 1500
    s = 0.2 + 0.8 * (np.arange(n) + 0.5) / n
    a = 0.75 + (4 / 3 - 0.75) * (np.arange(n) + 0.5) / n
    area, aspect = np.meshgrid(s * height * width, a, indexing="ij")
    w = np.floor(np.sqrt(area * aspect) + 0.5)
    h = np.floor(np.sqrt(area / aspect) + 0.5)
    fits = (w <= width) & (h <= height)
    fits_swapped = (h <= width) & (w <= height)
    return float(1.0 - 0.5 * fits.mean() - 0.5 * fits_swapped.mean())


def test_the_squash_rate_at_320x240_is_the_references() -> None:
    expected = _squash_probability(H, W)
    assert 0.25 < expected < 0.35  # "about 30 %" (reference notes)
    crop = RandomResizedCrop(128, draw="once")
    rng = np.random.default_rng(0)
    n = 20000
    full = sum(crop.sample(rng, H, W) == CropBox(0, 0, H, W) for _ in range(n))
    assert abs(full / n - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    retry = RandomResizedCrop(128, draw="retry")
    assert not any(retry.sample(rng, H, W) == CropBox(0, 0, H, W) for _ in range(2000))


def test_pretraining_view_policies_use_the_reference_draw_by_default() -> None:
    for pipeline in (coclr_base(), coclr_null()):
        assert pipeline.transforms[0].draw == "once"
    for name in ("coclr", "base", "null"):
        policy = build_view_policy(name, 2, 32)
        assert policy.base.transforms[0].draw == "once" and policy.null.transforms[0].draw == "once"
        retry = build_view_policy(name, 2, 32, crop_draw="retry")
        assert retry.base.transforms[0].draw == "retry" and retry.null.transforms[0].draw == "retry"


def test_an_unknown_draw_is_refused() -> None:
    with pytest.raises(ConfigError, match="crop draw must be one of"):
        RandomResizedCrop(128, draw="twice")


def test_presets_default_to_the_reference_draw_and_retry_is_an_option() -> None:
    from vidssl.methods.registry import load_config

    for preset in ("infonce/ucf101_rgb", "coclr/ucf101_rgb", "cpr/ucf101_rgb", "cvtcl/ucf101_rgb"):
        assert load_config(preset).data.crop_draw == "once"
    assert load_config("coclr/ucf101_rgb", ["data.crop_draw=retry"]).data.crop_draw == "retry"
