"""Photometric clip transforms: colour jitter, random grey, Gaussian blur.

Each draws its parameters once per clip (including the "apply or not" decision), takes uint8 or
float clips (uint8 is converted to float ``[0, 1]`` first) and returns float. The maths is in
`vidssl.data.transforms.ops`, shared with `vidssl.data.transforms.batched`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from vidssl.data.transforms import ops
from vidssl.data.transforms.core import ClipTransform
from vidssl.errors import ConfigError

__all__ = [
    "GRAY_MODES",
    "JITTER_FUNCTIONS",
    "BlurParams",
    "ColorJitter",
    "GaussianBlur",
    "GrayParams",
    "JitterParams",
    "RandomGrayscale",
    "per_frame_channels",
]

#: The jitter operations, in the order of `JitterParams.factors`.
JITTER_FUNCTIONS: tuple[Callable[[torch.Tensor, float | torch.Tensor], torch.Tensor], ...] = (
    ops.adjust_brightness,
    ops.adjust_contrast,
    ops.adjust_saturation,
    ops.adjust_hue,
)
_IDENTITY_FACTORS = (1.0, 1.0, 1.0, 0.0)

GRAY_MODES = ("channel_per_frame", "channel", "luma")


@dataclass(frozen=True)
class JitterParams:
    """One clip's colour-jitter draw.

    Attributes:
        applied: False when the jitter is skipped (probability ``1 − p``).
        factors: brightness, contrast, saturation factors and hue shift.
        order: the order in which the four operations run (a permutation of 0..3).
    """

    applied: bool
    factors: tuple[float, float, float, float] = _IDENTITY_FACTORS
    order: tuple[int, int, int, int] = (0, 1, 2, 3)


def _factor_range(value: float | tuple[float, float], name: str) -> tuple[float, float] | None:
    centre, bound = (0.0, (-0.5, 0.5)) if name == "hue" else (1.0, (0.0, float("inf")))
    if isinstance(value, (int, float)):
        if value < 0 or (name == "hue" and value > 0.5):
            raise ConfigError(f"jitter {name} must be in [0, {bound[1]}], got {value!r}")
        low, high = centre - value, centre + value
        low = max(low, 0.0) if name != "hue" else low
    else:
        low, high = (float(v) for v in value)
        if not bound[0] <= low <= high <= bound[1]:
            raise ConfigError(f"jitter {name} range must lie in {bound}, got {value!r}")
    return None if low == high == centre else (float(low), float(high))


class ColorJitter(ClipTransform):
    """Colour jitter applied with probability ``p``, the four operations in a random order.

    As CoCLR/torchvision: brightness/contrast/saturation factors ``~ U[max(0, 1−v), 1+v]``,
    hue shift ``~ U[−h, h]`` turns (or explicit ``(low, high)`` ranges); an operation whose
    range is the identity is skipped. Draw order: the apply decision, then the four factors,
    then the permutation. CoCLR's ``RandomApply(ColorJitter(...), p)`` is ``ColorJitter(..., p=p)``.
    """

    kind: ClassVar[str] = "photometric"
    name: ClassVar[str] = "jitter"

    def __init__(
        self,
        brightness: float | tuple[float, float] = 0.0,
        contrast: float | tuple[float, float] = 0.0,
        saturation: float | tuple[float, float] = 0.0,
        hue: float | tuple[float, float] = 0.0,
        *,
        p: float = 1.0,
    ) -> None:
        self.ranges = (
            _factor_range(brightness, "brightness"),
            _factor_range(contrast, "contrast"),
            _factor_range(saturation, "saturation"),
            _factor_range(hue, "hue"),
        )
        self.p = p

    def sample(self, rng: np.random.Generator, height: int = 0, width: int = 0) -> JitterParams:
        """Draws the decision, the factors and the order."""
        if not rng.random() < self.p:
            return JitterParams(False)
        factors = tuple(
            float(rng.uniform(*r)) if r is not None else identity
            for r, identity in zip(self.ranges, _IDENTITY_FACTORS)
        )
        order = tuple(int(i) for i in rng.permutation(4))
        return JitterParams(True, factors, order)  # type: ignore[arg-type]

    def apply_cthw(self, x: torch.Tensor, params: JitterParams) -> torch.Tensor:
        """Runs the enabled operations in ``params.order``."""
        x = ops.to_float(x)
        if not params.applied:
            return x
        for op_id in params.order:
            if self.ranges[op_id] is not None:
                x = JITTER_FUNCTIONS[op_id](x, params.factors[op_id])
        return x


@dataclass(frozen=True)
class GrayParams:
    """One clip's random-grey draw: whether to grey, and the channel or per-frame seed."""

    applied: bool
    channel: int = 0
    seed: int = 0


def per_frame_channels(seed: int, n_frames: int) -> np.ndarray:
    """The channel picked for each of ``n_frames`` frames in ``"channel_per_frame"`` mode."""
    return np.random.default_rng(seed).integers(3, size=n_frames)


class RandomGrayscale(ClipTransform):
    """Turns the clip grey with probability ``p``.

    Modes:
        ``"channel_per_frame"`` (default): CoCLR/ViCC's ``RandomGray``, which is really channel
            splitting: one of R, G, B is copied to all three channels, and that channel is
            re-drawn for *every frame* although the decision to grey is per clip. It is the
            default because it is what the reference documents and what its released
            checkpoints were trained with. The per-frame channels are derived from one seed drawn
            per clip, so an RGB clip and its flow clip get the same channels.
        ``"channel"``: the same splitting with one channel per clip (consistent over time).
        ``"luma"``: true grey, BT.601 ``0.299 R + 0.587 G + 0.114 B`` on all three channels
            (torchvision's ``RandomGrayscale``, used by PCL).
    """

    kind: ClassVar[str] = "photometric"
    name: ClassVar[str] = "grayscale"

    def __init__(self, p: float = 0.2, mode: str = "channel_per_frame") -> None:
        if mode not in GRAY_MODES:
            raise ConfigError(f"grayscale mode must be one of {GRAY_MODES}, got {mode!r}")
        self.p = p
        self.mode = mode

    def sample(self, rng: np.random.Generator, height: int = 0, width: int = 0) -> GrayParams:
        """Draws the decision, then the channel (``"channel"``) or seed (per-frame mode)."""
        if not rng.random() < self.p:
            return GrayParams(False)
        if self.mode == "channel":
            return GrayParams(True, channel=int(rng.integers(3)))
        if self.mode == "channel_per_frame":
            return GrayParams(True, seed=int(rng.integers(2**62)))
        return GrayParams(True)

    def frame_channels(self, params: GrayParams, n_frames: int) -> np.ndarray:
        """The channel copied at each frame (channel modes only)."""
        if self.mode == "channel":
            return np.full(n_frames, params.channel, dtype=np.int64)
        return per_frame_channels(params.seed, n_frames)

    def apply_cthw(self, x: torch.Tensor, params: GrayParams) -> torch.Tensor:
        """Greys the clip if ``params.applied``."""
        x = ops.to_float(x)
        if not params.applied:
            return x
        if self.mode == "luma":
            return ops.grayscale_luma(x)
        channels = torch.from_numpy(self.frame_channels(params, int(x.shape[-3])))
        return ops.grayscale_channel(x, channels)


@dataclass(frozen=True)
class BlurParams:
    """One clip's blur draw: whether to blur, and σ in pixels."""

    applied: bool
    sigma: float = 0.0


class GaussianBlur(ClipTransform):
    """Gaussian blur with ``σ ~ U(sigma)`` applied with probability ``p`` (SimCLR/CoCLR).

    The reference blurs with PIL's ``GaussianBlur(radius=σ)`` (a box-filter approximation of a
    Gaussian of standard deviation σ); here it is an exact separable Gaussian truncated at
    ``radius = ceil(3·σ_max)`` taps, with edge pixels replicated past the border like PIL.
    """

    kind: ClassVar[str] = "photometric"
    name: ClassVar[str] = "blur"

    def __init__(
        self, sigma: tuple[float, float] = (0.1, 2.0), p: float = 0.5, radius: int | None = None
    ) -> None:
        if not 0 < sigma[0] <= sigma[1]:
            raise ConfigError(f"blur sigma range must be 0 < low <= high, got {sigma!r}")
        self.sigma = (float(sigma[0]), float(sigma[1]))
        self.p = p
        self.radius = radius if radius is not None else ops.blur_radius(self.sigma[1])

    def sample(self, rng: np.random.Generator, height: int = 0, width: int = 0) -> BlurParams:
        """Draws the decision, then σ."""
        if not rng.random() < self.p:
            return BlurParams(False)
        return BlurParams(True, float(rng.uniform(*self.sigma)))

    def apply_cthw(self, x: torch.Tensor, params: BlurParams) -> torch.Tensor:
        """Blurs every frame if ``params.applied``."""
        x = ops.to_float(x)
        if not params.applied:
            return x
        return ops.gaussian_blur(x, params.sigma, self.radius)
