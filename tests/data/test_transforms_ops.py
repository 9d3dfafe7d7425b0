from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from vidssl.data.transforms import ops
from vidssl.errors import ConfigError, DataError


def _pixels(rows: list[list[tuple[float, float, float]]]) -> torch.Tensor:
    """A one-frame float clip ``3×1×H×W`` from rows of RGB tuples."""
    return torch.tensor(rows, dtype=torch.float32).permute(2, 0, 1)[:, None]


def _smooth_image(height: int = 24, width: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    channels = [127 + 100 * np.sin(xx / 5 + yy / 7), 127 + 100 * np.cos(xx / 4), yy * 255 / height]
    return np.stack(channels, -1).round().astype(np.uint8)


def _as_clip(image: np.ndarray) -> torch.Tensor:
    return ops.to_float(ops.clip_to_cthw(torch.from_numpy(image)[None]))


def _as_image(x: torch.Tensor) -> np.ndarray:
    return (x[:, 0].permute(1, 2, 0).numpy() * 255).round()


def test_clip_to_cthw_is_a_view_with_the_right_layout() -> None:
    clip = torch.arange(2 * 3 * 4 * 3, dtype=torch.uint8).reshape(2, 3, 4, 3)
    x = ops.clip_to_cthw(clip)
    assert x.shape == (3, 2, 3, 4) and x.data_ptr() == clip.data_ptr()
    assert x[2, 1, 0, 3] == clip[1, 0, 3, 2]
    assert ops.to_float(clip)[1, 1, 1, 1].item() == pytest.approx(clip[1, 1, 1, 1].item() / 255)


def test_brightness_contrast_saturation_by_hand() -> None:
    x = _pixels([[(0.2, 0.4, 0.6), (1.0, 0.0, 0.0)], [(0.0, 0.0, 0.0), (0.5, 0.5, 0.5)]])
    bright = ops.adjust_brightness(x, 1.5)
    assert bright[:, 0, 0, 0].tolist() == pytest.approx([0.3, 0.6, 0.9])
    assert bright[:, 0, 0, 1].tolist() == pytest.approx([1.0, 0.0, 0.0])  # clamped at 1
    # grey of each pixel (BT.601): 0.3980, 0.299, 0, 0.5 -> mean 0.29925.
    grey = [0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6, 0.299, 0.0, 0.5]
    mean = sum(grey) / 4
    contrast = ops.adjust_contrast(x, 0.5)
    assert contrast[:, 0, 0, 0].tolist() == pytest.approx(
        [0.5 * v + 0.5 * mean for v in (0.2, 0.4, 0.6)]
    )
    saturation = ops.adjust_saturation(x, 0.0)
    assert saturation[:, 0, 0, 0].tolist() == pytest.approx([grey[0]] * 3)
    double = ops.adjust_saturation(x, 2.0)
    assert double[:, 0, 0, 0].tolist() == pytest.approx([2 * v - grey[0] for v in (0.2, 0.4, 0.6)])


def test_contrast_mean_is_per_frame() -> None:
    x = torch.zeros(3, 2, 2, 2)
    x[:, 0] = 0.2
    x[:, 1, 0, 0] = 1.0  # frame 1: one white pixel, grey mean 0.25
    out = ops.adjust_contrast(x, 0.0)
    assert torch.allclose(out[:, 0], torch.full((3, 2, 2), 0.2))
    assert torch.allclose(out[:, 1], torch.full((3, 2, 2), 0.25))


@pytest.mark.parametrize(
    ("enhancer", "function", "factor"),
    [
        (ImageEnhance.Brightness, ops.adjust_brightness, 1.3),
        (ImageEnhance.Brightness, ops.adjust_brightness, 0.6),
        (ImageEnhance.Color, ops.adjust_saturation, 1.7),
        (ImageEnhance.Color, ops.adjust_saturation, 0.3),
        (ImageEnhance.Contrast, ops.adjust_contrast, 1.4),
        (ImageEnhance.Contrast, ops.adjust_contrast, 0.5),
    ],
)
def test_colour_ops_match_pil_enhance(enhancer, function, factor: float) -> None:
    image = _smooth_image()
    expected = np.asarray(enhancer(Image.fromarray(image)).enhance(factor)).astype(float)
    ours = _as_image(function(_as_clip(image), factor))
    # PIL works in uint8 (and rounds the contrast mean to an integer): within 2 levels.
    assert np.abs(ours - expected).max() <= 2


def test_luma_matches_pil_convert_l() -> None:
    image = _smooth_image()
    expected = np.asarray(Image.fromarray(image).convert("L")).astype(float)
    ours = _as_image(ops.grayscale_luma(_as_clip(image)))
    assert np.abs(ours[..., 0] - expected).max() <= 1
    assert np.array_equal(ours[..., 0], ours[..., 2])


def test_hsv_round_trip_and_colorsys() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.random((6, 5, 3)).astype(np.float32)
    rgb[0, 0] = (0.5, 0.5, 0.5)  # grey: hue 0, saturation 0
    rgb[0, 1] = (0.0, 0.0, 0.0)
    rgb[0, 2] = (0.9, 0.9, 0.1)  # red == green tie
    x = torch.from_numpy(rgb).permute(2, 0, 1)[:, None]
    hsv = ops.rgb_to_hsv(x)
    expected = np.array([[colorsys.rgb_to_hsv(*p) for p in row] for row in rgb.astype(float)])
    assert np.allclose(hsv[:, 0].permute(1, 2, 0).numpy(), expected, atol=1e-6)
    back = ops.hsv_to_rgb(hsv)
    assert torch.allclose(back, x, atol=1e-6)


def test_adjust_hue_matches_colorsys_rotation() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.random((4, 4, 3))
    x = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[:, None]
    for shift in (0.1, -0.3, 0.5):
        out = ops.adjust_hue(x, shift)[:, 0].permute(1, 2, 0).numpy()
        for i, j in np.ndindex(*rgb.shape[:2]):
            h, s, v = colorsys.rgb_to_hsv(*rgb[i, j])
            assert out[i, j] == pytest.approx(
                colorsys.hsv_to_rgb((h + shift) % 1.0, s, v), abs=1e-5
            )
    assert torch.allclose(ops.adjust_hue(x, 0.0), x, atol=1e-6)


def test_grayscale_channel_per_frame() -> None:
    x = torch.rand(3, 4, 2, 2)
    out = ops.grayscale_channel(x, torch.tensor([2, 0, 1, 2]))
    for t, channel in enumerate([2, 0, 1, 2]):
        for c in range(3):
            assert torch.equal(out[c, t], x[channel, t])
    batch = torch.rand(2, 3, 2, 2, 2)
    out = ops.grayscale_channel(batch, torch.tensor([[1, 1], [0, 2]]))
    assert torch.equal(out[1, 2, 1], batch[1, 2, 1]) and torch.equal(out[1, 0, 0], batch[1, 0, 0])
    assert torch.equal(out[0, 2, 0], batch[0, 1, 0])


def test_gaussian_blur_impulse_response_is_the_kernel() -> None:
    sigma, radius = 1.3, 4
    taps = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    taps /= taps.sum()
    x = torch.zeros(3, 2, 15, 15)
    x[:, :, 7, 7] = 1.0
    out = ops.gaussian_blur(x, sigma, radius)
    assert np.allclose(out[1, 1, 3:12, 3:12].numpy(), np.outer(taps, taps), atol=1e-6)
    flat = torch.full((3, 1, 5, 6), 0.4)
    assert torch.allclose(ops.gaussian_blur(flat, 2.0, 6), flat)  # replicated edges keep it flat
    assert ops.blur_radius(2.0) == 6


def test_gaussian_blur_per_sample_sigma() -> None:
    batch = torch.rand(2, 3, 2, 9, 9)
    out = ops.gaussian_blur(batch, torch.tensor([0.5, 1.5]), 4)
    assert torch.allclose(out[0], ops.gaussian_blur(batch[0], 0.5, 4), atol=1e-6)
    assert torch.allclose(out[1], ops.gaussian_blur(batch[1], 1.5, 4), atol=1e-6)


def test_normalisation_presets() -> None:
    x = torch.ones(3, 1, 1, 1)
    x[:, 0, 0, 0] = torch.tensor([0.485, 0.456, 0.406])
    assert torch.allclose(
        ops.normalize(x, *ops.normalization_stats("imagenet")), torch.zeros(3, 1, 1, 1), atol=1e-7
    )
    out = ops.normalize(torch.ones(3, 1, 1, 1), *ops.normalization_stats("kinetics"))
    assert out.flatten().tolist() == pytest.approx([(1 - 0.45) / 0.225] * 3)
    assert ops.normalization_stats("none") is None
    with pytest.raises(ConfigError):
        ops.normalization_stats("coco")


def test_residual_modes_by_hand() -> None:
    x = torch.tensor([0.1, 0.5, 0.3]).reshape(1, 3, 1, 1)  # one channel, T=3
    assert ops.residual(x, "pcl").flatten().tolist() == pytest.approx(
        [0.3 - 0.1, 0.1 - 0.5, 0.5 - 0.3]
    )
    assert ops.residual(x, "vcp").flatten().tolist() == pytest.approx([0.6, 0.3, 0.6])
    assert ops.residual(x, "iic").flatten().tolist() == pytest.approx([0.4, 0.7, 0.4])


@pytest.mark.parametrize(
    ("mode", "pil_mode"), [("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)]
)
@pytest.mark.parametrize("size", [(12, 20), (40, 50)])
def test_resize_matches_pil(mode: str, pil_mode: int, size: tuple[int, int]) -> None:
    image = _smooth_image()
    expected = np.asarray(Image.fromarray(image).resize(size[::-1], pil_mode)).astype(int)
    clip = ops.clip_to_cthw(torch.from_numpy(np.stack([image, image])))
    out = ops.resize(clip, size, mode)
    assert out.dtype == torch.uint8 and out.shape == (3, 2, *size)
    ours = out[:, 1].permute(1, 2, 0).numpy().astype(int)
    # PIL rounds to uint8 between its horizontal and vertical passes: at most one level apart.
    assert np.abs(ours - expected).max() <= 1


def test_crop_bounds() -> None:
    x = torch.arange(24.0).reshape(1, 1, 4, 6)
    assert ops.crop(x, 1, 2, 2, 3).flatten().tolist() == [8, 9, 10, 14, 15, 16]
    with pytest.raises(DataError):
        ops.crop(x, 3, 0, 2, 2)
    assert math.isclose(ops.to_float(x).sum().item(), x.sum().item())


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
@pytest.mark.parametrize("size", [(128, 128), (112, 150), (300, 400)])
def test_uint8_clip_resize_is_within_one_level_of_pil(mode, size):
    frame = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    pil_mode = Image.BICUBIC if mode == "bicubic" else Image.BILINEAR
    expected = np.asarray(Image.fromarray(frame).resize(size[::-1], pil_mode)).astype(int)
    clip = torch.from_numpy(np.stack([frame, frame])).permute(3, 0, 1, 2)  # C×T×H×W view of THWC
    out = ops.resize(clip, size, mode)
    assert out.dtype == torch.uint8 and out.shape == (3, 2, *size)
    got = out.permute(1, 2, 3, 0).numpy().astype(int)
    assert np.abs(got[0] - expected).max() <= 1 and np.array_equal(got[0], got[1])
