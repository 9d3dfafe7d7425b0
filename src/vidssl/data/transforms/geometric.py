"""Geometric clip transforms: crops, resizes, flips and the five/ten-crop test views.

Every box is drawn once per clip and cut from all frames; resizing a clip is one
``F.interpolate`` call. uint8 input stays uint8 (rounded after resizing), so CPU workers can ship
uint8 crops and leave the rest to `vidssl.data.transforms.batched`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from vidssl.data.transforms.core import ClipTransform
from vidssl.data.transforms.ops import clip_to_cthw, crop, hflip, resize
from vidssl.errors import ConfigError, DataError

__all__ = [
    "CROP_DRAWS",
    "FIVE_CROP_POSITIONS",
    "CenterCrop",
    "CornerCrop",
    "CropBox",
    "HorizontalFlip",
    "MultiCrop",
    "RandomCrop",
    "RandomResizedCrop",
    "Resize",
]

#: `RandomResizedCrop` draws: ``retry`` (up to ``attempts`` boxes, then a centred box) or
#: ``once`` (CoCLR pretraining: one box, else the whole frame).
CROP_DRAWS = ("retry", "once")

FIVE_CROP_POSITIONS = ("center", "top_left", "top_right", "bottom_left", "bottom_right")


@dataclass(frozen=True)
class CropBox:
    """A crop box in input pixels: rows ``[top, top+height)``, columns ``[left, left+width)``."""

    top: int
    left: int
    height: int
    width: int


def _pair(size: int | tuple[int, int], what: str) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or any(int(s) != s or s < 1 for s in pair):
        raise ConfigError(f"{what} must be a positive int or (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


class _BoxTransform(ClipTransform):
    """Cuts a `CropBox` (its params) and optionally resizes it to ``out_size``."""

    def __init__(
        self,
        out_size: tuple[int, int] | None,
        interpolation: str = "bilinear",
        antialias: bool = True,
    ) -> None:
        self.out_size = out_size
        self.interpolation = interpolation
        self.antialias = antialias

    def output_size(self, params: CropBox, height: int, width: int) -> tuple[int, int]:
        """The resize target, or the box size when there is none."""
        return self.out_size if self.out_size is not None else (params.height, params.width)

    def apply_cthw(self, x: torch.Tensor, params: CropBox) -> torch.Tensor:
        """Crops every frame to ``params`` (then resizes, if configured)."""
        x = crop(x, params.top, params.left, params.height, params.width)
        if self.out_size is not None:
            x = resize(x, self.out_size, self.interpolation, self.antialias)
        return x


class RandomResizedCrop(_BoxTransform):
    """CoCLR's ``RandomSizedCrop``: a random box of random area and aspect, resized to ``size``.

    Per attempt (up to ``attempts``): ``area ~ U(scale)·H·W``, ``aspect ~ U(ratio)``,
    ``w = round(√(area·aspect))``, ``h = round(√(area/aspect))``, swap ``w`` and ``h`` with
    probability ``swap_prob``; if the box fits, ``left ~ U{0..W−w}`` then ``top ~ U{0..H−h}``.
    If no attempt fits, the fallback is CoCLR's ``Scale(size) + CenterCrop(size)``, done here as
    the largest centred box with the output's aspect, then a resize (same pixels up to resampling
    at the box border). Default interpolation is bicubic (PIL's, as in CoCLR).

    ``draw="once"`` is the ``consistent=False`` branch of CoCLR's crop, which its pretraining
    ran (``main_nce.py``, ``main_coclr.py``): one attempt, drawn as above; if that box does not
    fit, the box is the whole frame, so the *uncropped* frame is resized (squashed) to ``size``.
    At 320×240 with the default ranges that happens in about 30 % of draws. ``draw="retry"`` is
    the ``consistent=True`` branch (fine-tuning, linear probe): up to ``attempts`` tries, then
    the centred fallback; it never squashes the full frame.

    Args:
        size: output ``(height, width)`` or an int for a square.
        scale: range of the box area as a fraction of the frame (CoCLR ``bottom_area=0.2``).
        ratio: range of the aspect ``w/h`` before the swap.
        swap_prob: probability of swapping ``w`` and ``h``.
        attempts: tries before the fallback (``draw="retry"``).
        draw: ``"retry"`` or ``"once"`` (CoCLR's pretraining draw, see above).
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        antialias: PIL-like antialiasing when shrinking.
    """

    name: ClassVar[str] = "crop"

    def __init__(
        self,
        size: int | tuple[int, int],
        scale: tuple[float, float] = (0.2, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        *,
        swap_prob: float = 0.5,
        attempts: int = 10,
        draw: str = "retry",
        interpolation: str = "bicubic",
        antialias: bool = True,
    ) -> None:
        if not 0 < scale[0] <= scale[1] or not 0 < ratio[0] <= ratio[1]:
            raise ConfigError(f"crop scale {scale} and ratio {ratio} must be 0 < low <= high")
        if draw not in CROP_DRAWS:
            raise ConfigError(f"crop draw must be one of {CROP_DRAWS}, got {draw!r}")
        self.draw = draw
        super().__init__(_pair(size, "crop size"), interpolation, antialias)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.swap_prob = swap_prob
        self.attempts = attempts

    def sample(self, rng: np.random.Generator, height: int, width: int) -> CropBox:
        """Draws the box (see the class docstring for the draw order)."""
        area = height * width
        for _ in range(1 if self.draw == "once" else self.attempts):
            target_area = rng.uniform(*self.scale) * area
            aspect = rng.uniform(*self.ratio)
            box_w = round(math.sqrt(target_area * aspect))
            box_h = round(math.sqrt(target_area / aspect))
            if rng.random() < self.swap_prob:
                box_w, box_h = box_h, box_w
            if 1 <= box_w <= width and 1 <= box_h <= height:
                left = int(rng.integers(width - box_w + 1))
                top = int(rng.integers(height - box_h + 1))
                return CropBox(top, left, box_h, box_w)
        if self.draw == "once":
            return CropBox(0, 0, height, width)  # the whole frame, squashed by the resize
        return _centred_box_with_aspect(height, width, self.out_size[1] / self.out_size[0])


def _centred_box_with_aspect(height: int, width: int, aspect: float) -> CropBox:
    """The largest centred box of aspect ``w/h = aspect`` inside a ``height×width`` frame."""
    if width / height > aspect:
        box_h, box_w = height, max(1, min(width, round(height * aspect)))
    else:
        box_h, box_w = max(1, min(height, round(width / aspect))), width
    return CropBox(round((height - box_h) / 2), round((width - box_w) / 2), box_h, box_w)


class Resize(ClipTransform):
    """Resizes every frame, to a short side (int) or to an exact ``(height, width)``.

    With an int the short side becomes ``size`` and the long side ``int(size·long/short)``
    (truncated, as CoCLR's ``Scale`` and torchvision); frames already at that size are unchanged.
    """

    name: ClassVar[str] = "resize"

    def __init__(
        self,
        size: int | tuple[int, int],
        interpolation: str = "bilinear",
        antialias: bool = True,
    ) -> None:
        self.size = size if isinstance(size, int) else _pair(size, "resize size")
        if isinstance(self.size, int) and self.size < 1:
            raise ConfigError(f"resize size must be positive, got {size!r}")
        self.interpolation = interpolation
        self.antialias = antialias

    def output_size(self, params: None, height: int, width: int) -> tuple[int, int]:
        """The target size for a ``height×width`` input."""
        if not isinstance(self.size, int):
            return self.size
        if height <= width:
            return self.size, int(self.size * width / height)
        return int(self.size * height / width), self.size

    def apply_cthw(self, x: torch.Tensor, params: None = None) -> torch.Tensor:
        """Resizes all frames with one interpolation call."""
        target = self.output_size(None, int(x.shape[-2]), int(x.shape[-1]))
        return resize(x, target, self.interpolation, self.antialias)


class CornerCrop(_BoxTransform):
    """A fixed ``size`` crop at one of `FIVE_CROP_POSITIONS`.

    The centre box starts at ``int(round((H − h)/2))``, ``int(round((W − w)/2))`` (CoCLR and
    torchvision). A frame smaller than the crop raises `DataError` (no silent padding).
    """

    name: ClassVar[str] = "crop"

    def __init__(self, size: int | tuple[int, int], position: str = "center") -> None:
        if position not in FIVE_CROP_POSITIONS:
            raise ConfigError(
                f"crop position must be one of {FIVE_CROP_POSITIONS}, got {position!r}"
            )
        super().__init__(None)
        self.size = _pair(size, "crop size")
        self.position = position

    def sample(self, rng: np.random.Generator | None, height: int, width: int) -> CropBox:
        """The (deterministic) box for a ``height×width`` frame."""
        box_h, box_w = self.size
        if box_h > height or box_w > width:
            raise DataError(f"frames {height}×{width} are smaller than the {box_h}×{box_w} crop")
        tops = {"top": 0, "bottom": height - box_h}
        lefts = {"left": 0, "right": width - box_w}
        if self.position == "center":
            top, left = round((height - box_h) / 2), round((width - box_w) / 2)
        else:
            vertical, horizontal = self.position.split("_")
            top, left = tops[vertical], lefts[horizontal]
        return CropBox(int(top), int(left), box_h, box_w)


class CenterCrop(CornerCrop):
    """A centred ``size`` crop (see `CornerCrop`)."""

    def __init__(self, size: int | tuple[int, int]) -> None:
        super().__init__(size, "center")


class RandomCrop(_BoxTransform):
    """A ``size`` crop at a uniform position: ``top ~ U{0..H−h}`` then ``left ~ U{0..W−w}``."""

    name: ClassVar[str] = "crop"

    def __init__(self, size: int | tuple[int, int]) -> None:
        super().__init__(None)
        self.size = _pair(size, "crop size")

    def sample(self, rng: np.random.Generator, height: int, width: int) -> CropBox:
        """Draws the box position."""
        box_h, box_w = self.size
        if box_h > height or box_w > width:
            raise DataError(f"frames {height}×{width} are smaller than the {box_h}×{box_w} crop")
        top = int(rng.integers(height - box_h + 1))
        left = int(rng.integers(width - box_w + 1))
        return CropBox(top, left, box_h, box_w)


class HorizontalFlip(ClipTransform):
    """Mirrors the whole clip left-right with probability ``p`` (params: the bool decision).

    A flow clip is mirrored like an image, without negating its horizontal component, exactly as
    the references do with their flow JPEGs.
    """

    name: ClassVar[str] = "flip"

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def sample(self, rng: np.random.Generator, height: int = 0, width: int = 0) -> bool:
        """True to flip."""
        return bool(rng.random() < self.p)

    def apply_cthw(self, x: torch.Tensor, params: bool) -> torch.Tensor:
        """Flips every frame if ``params`` is True."""
        return hflip(x) if params else x


class MultiCrop:
    """Five-crop or ten-crop test views of one clip (CoCLR ``--five_crop`` / ``--ten_crop``).

    Views are the crops at `FIVE_CROP_POSITIONS` (centre, top-left, top-right, bottom-left,
    bottom-right), then — with ``flips=True`` — the same five mirrored; each view then goes
    through ``then`` (e.g. resize to 128 and normalise).

    Args:
        size: crop size (CoCLR: 224 of the raw frame).
        flips: add the mirrored views (ten-crop).
        then: transform applied to each cropped view; its random parameters, if any, are drawn
            per view from the ``rng`` passed to ``__call__``.
    """

    def __init__(
        self, size: int | tuple[int, int], *, flips: bool = False, then: ClipTransform | None = None
    ) -> None:
        self.crops = [CornerCrop(size, position) for position in FIVE_CROP_POSITIONS]
        self.flips = flips
        self.then = then

    def view_params(self, height: int, width: int) -> list[tuple[CropBox, bool]]:
        """``(box, flipped)`` of every view for ``height×width`` frames, in output order."""
        boxes = [c.sample(None, height, width) for c in self.crops]
        flips = (False, True) if self.flips else (False,)
        return [(box, flipped) for flipped in flips for box in boxes]

    def __call__(
        self, clip: torch.Tensor | np.ndarray, rng: np.random.Generator | None = None
    ) -> list[torch.Tensor]:
        """The views of a uint8 ``T×H×W×C`` clip, each ``C×T×h×w``."""
        x = clip_to_cthw(clip)
        height, width = int(x.shape[-2]), int(x.shape[-1])
        views = []
        for box, flipped in self.view_params(height, width):
            view = crop(x, box.top, box.left, box.height, box.width)
            view = hflip(view) if flipped else view
            if self.then is not None:
                params = self.then.sample(rng, box.height, box.width)
                view = self.then.apply_cthw(view, params)
            views.append(view)
        return views
