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


def test_jitter_draws_replayed() -> None:
    jitter = ColorJitter(0.4, 0.3, 0.2, 0.1, p=0.8)
    for seed in range(10):
        params = jitter.sample(np.random.default_rng(seed))
        replay = np.random.default_rng(seed)
        if not replay.random() < 0.8:
            assert params == JitterParams(False)
            continue
        factors = (
            replay.uniform(0.6, 1.4),
            replay.uniform(0.7, 1.3),
            replay.uniform(0.8, 1.2),
            replay.uniform(-0.1, 0.1),
        )
        assert params.applied and params.factors == pytest.approx(factors)
        assert params.order == tuple(replay.permutation(4))


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
    gray = RandomGrayscale(0.5, "channel")
    for seed in range(8):
        replay = np.random.default_rng(seed)  # the decision comes first, then the channel
        applied = replay.random() < 0.5
        expected = (
            GrayParams(True, channel=int(replay.integers(3))) if applied else GrayParams(False)
        )
        assert gray.sample(np.random.default_rng(seed)) == expected


def test_blur_draws_and_application() -> None:
    blur = GaussianBlur((0.1, 2.0), p=0.5)
    assert blur.radius == 6
    for seed in range(8):
        replay = np.random.default_rng(seed)
        applied = replay.random() < 0.5
        expected = BlurParams(True, replay.uniform(0.1, 2.0)) if applied else BlurParams(False)
        assert blur.sample(np.random.default_rng(seed)) == expected
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
