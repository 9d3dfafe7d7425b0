from __future__ import annotations

import numpy as np
import pytest
import torch

from vidssl.data.transforms import ops
from vidssl.data.transforms.color import BlurParams, GrayParams, JitterParams
from vidssl.data.transforms.compose import (
    ColorJitter,
    GaussianBlur,
    Normalize,
    RandomGrayscale,
    ResidualClip,
)
from vidssl.errors import ConfigError


def _clip(n_frames: int = 3, size: int = 6, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n_frames, size, size, 3), dtype=np.uint8))


def _binomial_ok(hits: int, n: int, p: float) -> bool:
    """Within 4 standard deviations of n·p."""
    return abs(hits - n * p) <= 4 * (n * p * (1 - p)) ** 0.5


def test_jitter_draws_follow_the_specified_rate_ranges_and_orders() -> None:
    # ColorJitter(brightness 0.4, contrast 0.3, saturation 0.2, hue 0.1, p=0.8): applied with
    # p 0.8; factors uniform in [1 ± b], [1 ± c], [1 ± s] and hue in [−h, h]; the four
    # operations in a uniformly random order
    jitter = ColorJitter(0.4, 0.3, 0.2, 0.1, p=0.8)
    rng = np.random.default_rng(11)
    n = 10_000
    draws = [jitter.sample(rng) for _ in range(n)]
    applied = [d for d in draws if d.applied]
    assert _binomial_ok(len(applied), n, 0.8)
    assert all(d == JitterParams(False) for d in draws if not d.applied)
    factors = np.array([d.factors for d in applied])
    for column, (low, high) in enumerate([(0.6, 1.4), (0.7, 1.3), (0.8, 1.2), (-0.1, 0.1)]):
        values = factors[:, column]
        assert low <= values.min() and values.max() <= high
        # uniform: mean in the middle, a quarter of the draws in each quarter of the range
        assert abs(values.mean() - (low + high) / 2) < 0.02 * (high - low)
        quarter = np.mean(values < low + (high - low) / 4)
        assert abs(quarter - 0.25) < 0.02
    orders = [tuple(d.order) for d in applied]
    assert all(sorted(o) == [0, 1, 2, 3] for o in orders)
    assert len(set(orders)) == 24
    firsts = np.bincount([o[0] for o in orders], minlength=4) / len(orders)
    assert np.all(np.abs(firsts - 0.25) < 0.03)


def test_jitter_ranges() -> None:
    assert ColorJitter(0.4, 1.5, (0.5, 2.0), 0.1).ranges == (
        (0.6, 1.4),
        (0.0, 2.5),  # 1 - 1.5 is clipped at 0
        (0.5, 2.0),
        (-0.1, 0.1),
    )
    assert ColorJitter(brightness=0.2).ranges[1:] == (None, None, None)
    with pytest.raises(ConfigError):
        ColorJitter(hue=0.6)
    with pytest.raises(ConfigError):
        ColorJitter(contrast=(1.5, 0.5))


def test_jitter_runs_the_ops_in_the_drawn_order() -> None:
    clip = _clip()
    x = ops.clip_to_cthw(clip).float() / 255
    jitter = ColorJitter(0.4, 0.4, 0.4, 0.1)
    factors = (1.3, 0.7, 1.5, 0.08)
    for order in ((0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)):
        expected = x
        functions = (
            ops.adjust_brightness,
            ops.adjust_contrast,
            ops.adjust_saturation,
            ops.adjust_hue,
        )
        for op_id in order:
            expected = functions[op_id](expected, factors[op_id])
        out = jitter.apply(clip, JitterParams(True, factors, order))
        assert torch.allclose(out, expected)
    assert not torch.allclose(
        jitter.apply(clip, JitterParams(True, factors, (0, 1, 2, 3))),
        jitter.apply(clip, JitterParams(True, factors, (3, 2, 1, 0))),
    )
    assert torch.equal(jitter.apply(clip, JitterParams(False)), x)


def test_jitter_is_the_same_on_every_frame() -> None:
    clip = _clip(4)
    jitter = ColorJitter(0.4, 0.4, 0.4, 0.1)
    params = JitterParams(True, (1.2, 0.8, 1.4, -0.05), (1, 3, 0, 2))
    out = jitter.apply(clip, params)
    for t in range(4):
        assert torch.allclose(jitter.apply(clip[t : t + 1], params)[:, 0], out[:, t], atol=1e-6)


def test_grayscale_modes() -> None:
    clip = _clip(5)
    x = ops.clip_to_cthw(clip).float() / 255
    luma = RandomGrayscale(1.0, "luma").apply(clip, GrayParams(True))
    grey = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    assert all(torch.allclose(luma[c], grey) for c in range(3))
    per_clip = RandomGrayscale(1.0, "channel").apply(clip, GrayParams(True, channel=2))
    assert all(torch.equal(per_clip[c], x[2]) for c in range(3))
    per_frame = RandomGrayscale(1.0, "channel_per_frame").apply(clip, GrayParams(True, seed=99))
    channels = np.random.default_rng(99).integers(3, size=5)
    assert len(set(channels.tolist())) > 1  # the seed gives a mix, so the test can tell
    for t, channel in enumerate(channels):
        assert all(torch.equal(per_frame[c, t], x[channel, t]) for c in range(3))
    assert torch.equal(RandomGrayscale(1.0).apply(clip, GrayParams(False)), x)
    with pytest.raises(ConfigError):
        RandomGrayscale(0.2, "average")


def test_grayscale_draws() -> None:
    # applied with p 0.5; the kept channel uniform over the three
    gray = RandomGrayscale(0.5, "channel")
    rng = np.random.default_rng(5)
    draws = [gray.sample(rng) for _ in range(6000)]
    applied = [d for d in draws if d.applied]
    assert _binomial_ok(len(applied), 6000, 0.5)
    assert all(d == GrayParams(False) for d in draws if not d.applied)
    counts = np.bincount([d.channel for d in applied], minlength=3)
    assert all(_binomial_ok(int(c), len(applied), 1 / 3) for c in counts)


def test_blur_draws_and_application() -> None:
    blur = GaussianBlur((0.1, 2.0), p=0.5)
    assert blur.radius == 6
    rng = np.random.default_rng(9)
    draws = [blur.sample(rng) for _ in range(6000)]
    sigmas = np.array([d.sigma for d in draws if d.applied])
    assert _binomial_ok(len(sigmas), 6000, 0.5)  # applied with p 0.5, σ uniform in [0.1, 2]
    assert all(d == BlurParams(False) for d in draws if not d.applied)
    assert sigmas.min() >= 0.1 and sigmas.max() <= 2.0 and abs(sigmas.mean() - 1.05) < 0.03
    clip = _clip(2, 9)
    out = blur.apply(clip, BlurParams(True, 1.1))
    x = ops.clip_to_cthw(clip).float() / 255
    assert torch.allclose(out, ops.gaussian_blur(x, 1.1, 6))
    assert out.std() < x.std()  # blurring removes variance from noise


def test_normalize_and_residual_steps() -> None:
    clip = torch.full((2, 1, 1, 3), 255, dtype=torch.uint8)
    out = Normalize("imagenet").apply(clip, None)
    expected = [(1 - m) / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    assert out[:, 0, 0, 0].tolist() == pytest.approx(expected)
    assert torch.equal(Normalize("none").apply(clip, None), torch.ones(3, 2, 1, 1))
    ramp = torch.tensor([0, 51, 255], dtype=torch.uint8).reshape(3, 1, 1, 1).expand(3, 1, 1, 3)
    residual = ResidualClip("pcl").apply(ramp, None)[0].flatten()
    assert residual.tolist() == pytest.approx([1.0, -0.2, -0.8])  # x[t-1] - x[t], wrapping at 0
