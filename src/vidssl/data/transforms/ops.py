"""Tensor functions behind the clip transforms, shared by the per-clip and the batched versions.

Layout is ``(..., C, T, H, W)``: the channel axis is dim −4, so one clip is ``C×T×H×W`` and a
batch is ``B×C×T×H×W``. A per-clip parameter is a Python number, a 0-d tensor, or — for a batch —
a ``[B]`` tensor (one value per clip), broadcast over the other axes. Every function works on a
whole clip or batch with tensor ops (no loops over frames or pixels).

Colour functions take float images in ``[0, 1]`` (convert with `to_float`) and follow the usual
(torchvision) definitions: brightness scales, contrast and saturation blend with the grey mean or
grey image, hue rotates the HSV hue; results are clamped to ``[0, 1]``. Grey is ITU-R BT.601 luma
``0.299 R + 0.587 G + 0.114 B`` (PIL's ``convert('L')``, which the reference code ran through
since it jittered PIL images; torchvision's tensor path uses 0.2989 for R).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vidssl.errors import ConfigError, DataError

__all__ = [
    "LUMA_WEIGHTS",
    "NORMALIZATIONS",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "blur_radius",
    "clip_to_cthw",
    "crop",
    "gaussian_blur",
    "gaussian_kernels",
    "grayscale_channel",
    "grayscale_luma",
    "hflip",
    "hsv_to_rgb",
    "luma",
    "normalization_stats",
    "normalize",
    "per_clip",
    "residual",
    "resize",
    "rgb_to_hsv",
    "to_float",
]

LUMA_WEIGHTS = (0.299, 0.587, 0.114)

#: Normalisation presets: name -> (mean, std) per channel; "none" leaves ``[0, 1]`` values.
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]] | None] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "kinetics": ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225)),
    "none": None,
}

RESIDUAL_MODES = ("pcl", "vcp", "iic")


def clip_to_cthw(clip: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A ``T×H×W×C`` clip (as a source returns it) viewed as ``C×T×H×W`` (no copy)."""
    tensor = torch.as_tensor(clip)
    if tensor.ndim != 4:
        raise DataError(f"clip must be T×H×W×C, got shape {tuple(tensor.shape)}")
    return tensor.permute(3, 0, 1, 2)


def per_clip(value: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A parameter as a tensor of ``x``'s dtype/device that broadcasts over ``(..., C, T, H, W)``.

    A ``[B]`` tensor becomes ``[B, 1, 1, 1, 1]``; a number or 0-d tensor stays 0-d.
    """
    tensor = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if tensor.ndim == 0:
        return tensor
    return tensor.reshape((*tensor.shape, 1, 1, 1, 1))


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` → float32 ``[0, 1]``; a float tensor is returned unchanged."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    if not x.is_floating_point():
        raise DataError(f"expected a uint8 or float clip, got {x.dtype}")
    return x


def crop(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The box ``[top, top+height) × [left, left+width)`` of every frame (a view)."""
    full_h, full_w = x.shape[-2:]
    if top < 0 or left < 0 or top + height > full_h or left + width > full_w:
        raise DataError(
            f"crop box {height}×{width} at ({top}, {left}) does not fit a {full_h}×{full_w} frame"
        )
    return x[..., top : top + height, left : left + width]


def resize(
    x: torch.Tensor,
    size: tuple[int, int],
    interpolation: str = "bilinear",
    antialias: bool = True,
) -> torch.Tensor:
    """Resizes every frame to ``size = (height, width)`` with one ``F.interpolate`` call.

    With ``antialias=True`` (default) bilinear/bicubic match PIL's ``Image.resize`` (Keys cubic
    ``a = −0.5``, support widened when shrinking). A uint8 ``C×T×H×W`` clip on the CPU uses torch's
    fixed-point uint8 kernels (PIL's arithmetic, within ±1 of it); other uint8 input is resized
    in float and rounded back (clamped to ``[0, 255]``); float input is not clamped.
    """
    if interpolation not in ("bilinear", "bicubic"):
        raise ConfigError(f"interpolation must be 'bilinear' or 'bicubic', got {interpolation!r}")
    height, width = int(size[0]), int(size[1])
    if tuple(x.shape[-2:]) == (height, width):
        return x
    is_uint8 = x.dtype == torch.uint8
    if is_uint8 and x.device.type == "cpu" and x.dim() == 4 and x.shape[0] in (1, 2, 3):
        # C×T×H×W uint8 (decoded THWC frames seen channel-first): torch's fixed-point uint8
        # kernels on T×C×H×W channels-last frames are ~10× faster than float and round like PIL.
        frames = x.transpose(0, 1).contiguous(memory_format=torch.channels_last)
        out = F.interpolate(
            frames, size=(height, width), mode=interpolation, align_corners=False,
            antialias=antialias,
        )  # fmt: skip
        return out.transpose(0, 1).contiguous()  # C×T×H×W: later float ops run 2-3× faster
    lead = x.shape[:-2]
    flat = x.reshape(1, -1, *x.shape[-2:])
    if is_uint8:
        flat = flat.to(torch.float32)
    out = F.interpolate(
        flat, size=(height, width), mode=interpolation, align_corners=False, antialias=antialias
    )
    if is_uint8:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return out.reshape(*lead, height, width)


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirrors every frame left-right."""
    return x.flip(-1)


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 grey ``(..., 1, T, H, W)`` of an RGB ``(..., 3, T, H, W)`` float clip."""
    weights = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device).reshape(3, 1, 1, 1)
    return (x * weights).sum(dim=-4, keepdim=True)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: float | torch.Tensor) -> torch.Tensor:
    f = per_clip(factor, x)
    return (f * x + (1 - f) * other).clamp_(0.0, 1.0)


def adjust_brightness(x: torch.Tensor, factor: float | torch.Tensor) -> torch.Tensor:
    """``clamp(factor·x)``: 0 gives black, 1 the original."""
    return (per_clip(factor, x) * x).clamp_(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, factor: float | torch.Tensor) -> torch.Tensor:
    """Blends each frame with the mean of its grey image: 0 gives flat grey, 1 the original."""
    mean = luma(x).mean(dim=(-2, -1), keepdim=True)
    return _blend(x, mean, factor)


def adjust_saturation(x: torch.Tensor, factor: float | torch.Tensor) -> torch.Tensor:
    """Blends with the grey image: 0 gives grey, 1 the original, >1 more saturated."""
    return _blend(x, luma(x), factor)


def _hue_sextants(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(hue·6, max, max − min)`` of an RGB clip; hue 0 where max == min.

    The hue is in ``(−1, 6)``: not wrapped into ``[0, 6)`` (callers wrap once at the end).
    """
    r, g, b = x.unbind(dim=-4)
    maxc = torch.maximum(torch.maximum(r, g), b)
    delta = maxc - torch.minimum(torch.minimum(r, g), b)
    safe_delta = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        maxc == r,
        (g - b) / safe_delta,
        torch.where(maxc == g, (b - r) / safe_delta + 2.0, (r - g) / safe_delta + 4.0),
    )
    return torch.where(delta > 0, hue, torch.zeros_like(hue)), maxc, delta


def _hexcone(hue6: torch.Tensor, value: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """RGB from hue (in sextants), value and chroma ``V·S``.

    Channel ``n ∈ (5, 3, 1)`` (R, G, B) is ``V − chroma·clamp(min(k, 4−k), 0, 1)`` with
    ``k = (n + hue6) mod 6``.
    """
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(hue6 + n, 6.0)
        channels.append(value - chroma * torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0))
    return torch.stack(channels, dim=-4)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB → HSV (all in ``[0, 1]``, hue in turns) along dim −4, as ``colorsys.rgb_to_hsv``."""
    hue6, maxc, delta = _hue_sextants(x)
    saturation = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    return torch.stack((torch.remainder(hue6, 6.0) / 6.0, saturation, maxc), dim=-4)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV → RGB along dim −4 (the closed form of the hexcone model)."""
    hue, saturation, value = x.unbind(dim=-4)
    return _hexcone(hue * 6.0, value, value * saturation)


def adjust_hue(x: torch.Tensor, factor: float | torch.Tensor) -> torch.Tensor:
    """Rotates the HSV hue by ``factor`` turns (``[-0.5, 0.5]``); 0 leaves colours unchanged.

    Same result as RGB → HSV, ``H ← (H + factor) mod 1``, HSV → RGB, computed without forming the
    saturation (``V·S`` is the chroma ``max − min``).
    """
    hue6, maxc, delta = _hue_sextants(x)
    shift = per_clip(factor, x)
    shift = shift[..., 0, :, :, :] if shift.ndim else shift  # drop the channel axis
    return _hexcone(hue6 + 6.0 * shift, maxc, delta).clamp_(0.0, 1.0)


def grayscale_luma(x: torch.Tensor) -> torch.Tensor:
    """Replaces RGB by its BT.601 grey, repeated on 3 channels."""
    return luma(x).expand_as(x).contiguous()


def grayscale_channel(x: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """CoCLR's "channel splitting": frame t shows channel ``channels[..., t]`` on all 3 channels.

    Args:
        x: ``(..., 3, T, H, W)`` clip(s).
        channels: int64 ``[T]`` (one clip) or ``[B, T]`` (batch) channel ids in {0, 1, 2}.
    """
    index = channels.to(device=x.device, dtype=torch.long)
    index = index.reshape((*index.shape[:-1], 1, index.shape[-1], 1, 1))
    index = index.expand(*x.shape[:-4], 1, *x.shape[-3:])
    return torch.gather(x, -4, index).expand_as(x).contiguous()


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussians ``[N, 2·radius+1]``, one per σ in the ``[N]`` tensor ``sigma``."""
    offsets = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    weights = torch.exp(-(offsets**2) / (2.0 * sigma[:, None] ** 2))
    return weights / weights.sum(dim=1, keepdim=True)


def blur_radius(max_sigma: float) -> int:
    """Kernel half-width used for σ up to ``max_sigma``: ``ceil(3·max_sigma)``."""
    return max(math.ceil(3.0 * max_sigma), 1)


def gaussian_blur(x: torch.Tensor, sigma: float | torch.Tensor, radius: int) -> torch.Tensor:
    """Separable Gaussian blur of every frame, with edge pixels replicated past the border.

    Args:
        x: float ``(..., C, T, H, W)``.
        sigma: standard deviation in pixels; a number, or ``[B]`` for a batch.
        radius: kernel half-width (taps ``−radius..radius``); fixed per transform so that the
            per-clip and batched paths use identical kernels.
    """
    lead = x.shape[:-4]
    n_lead = int(np.prod(lead)) if lead else 1
    sigma_t = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1)
    sigma_t = sigma_t.expand(n_lead) if sigma_t.numel() == 1 else sigma_t
    planes = x.shape[-4] * x.shape[-3]
    kernels = gaussian_kernels(sigma_t, radius).repeat_interleave(planes, dim=0)
    groups = kernels.shape[0]
    flat = x.reshape(1, groups, *x.shape[-2:])
    flat = F.pad(flat, (radius, radius, 0, 0), mode="replicate")
    flat = F.conv2d(flat, kernels[:, None, None, :], groups=groups)
    flat = F.pad(flat, (0, 0, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernels[:, None, :, None], groups=groups)
    return flat.reshape(x.shape)


def normalization_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The ``(mean, std)`` of a preset in `NORMALIZATIONS` (None for ``"none"``)."""
    if name not in NORMALIZATIONS:
        raise ConfigError(f"normalization must be one of {sorted(NORMALIZATIONS)}, got {name!r}")
    return NORMALIZATIONS[name]


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(x − mean_c) / std_c`` per channel (dim −4)."""
    shape = (len(mean), 1, 1, 1)
    mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device).reshape(shape)
    std_t = torch.tensor(std, dtype=x.dtype, device=x.device).reshape(shape)
    return (x - mean_t) / std_t


def residual(x: torch.Tensor, mode: str = "pcl") -> torch.Tensor:
    """Residual clip along time (dim −3), wrapping around at t = 0 like ``torch.roll``.

    Modes (reference table in PCL §3.3), with ``prev[t] = x[t−1]`` and ``prev[0] = x[T−1]``:
    ``"pcl"``: ``prev − x`` (PCL training/retrieval, unscaled); ``"vcp"``: ``(prev − x + 1)/2``
    (VCP and PCL's ``network.py``); ``"iic"``: ``(x − prev + 1)/2`` (IIC, opposite sign).
    """
    previous = torch.roll(x, shifts=1, dims=-3)
    if mode == "pcl":
        return previous - x
    if mode == "vcp":
        return (previous - x + 1.0) / 2.0
    if mode == "iic":
        return (x - previous + 1.0) / 2.0
    raise ConfigError(f"residual mode must be one of {RESIDUAL_MODES}, got {mode!r}")
