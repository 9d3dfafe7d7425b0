"""RoIAlign in plain torch (no torchvision), vectorised and device-agnostic.

Same arithmetic as torchvision's / detectron2's ``roi_align``: for every RoI and output bin, a
``grid_h × grid_w`` grid of regularly spaced points is sampled bilinearly and averaged. With
``aligned=True`` box corners are shifted by -0.5 pixel (pixel centres at integer + 0.5); with
``aligned=False`` the RoI is at least 1×1 feature pixel. ``sampling_ratio <= 0`` is adaptive:
``ceil(roi_size / output_size)`` points per bin and axis, per RoI. A point outside
``[-1, H] × [-1, W]`` contributes 0; coordinates in ``[-1, 0)`` are clamped to 0 and those past the
last row/column are clamped to it.

Bilinear sampling on a product grid is separable: each RoI's output is
``Wy · F · Wxᵀ`` with per-axis interpolation matrices, so the whole batch is two ``einsum`` calls
(no Python loop over RoIs; everything stays on the feature map's device).
"""

from __future__ import annotations

import torch
from torch import nn


def _axis_weights(
    start: torch.Tensor,
    bin_size: torch.Tensor,
    grid: torch.Tensor,
    bins: int,
    max_grid: int,
    extent: int,
) -> torch.Tensor:
    """Interpolation weights ``[K, bins * max_grid, extent]`` of the sample points along one axis.

    Points beyond a RoI's own ``grid`` (adaptive sampling) get all-zero rows.
    """
    device, dtype = start.device, start.dtype
    bin_index = torch.arange(bins, device=device, dtype=dtype)
    point_index = torch.arange(max_grid, device=device, dtype=dtype)
    step = bin_size / grid.clamp(min=1).to(dtype)  # [K]
    coord = (
        start[:, None, None]
        + bin_index[None, :, None] * bin_size[:, None, None]
        + (point_index[None, None, :] + 0.5) * step[:, None, None]
    )  # [K, bins, max_grid]
    used = point_index[None, None, :] < grid[:, None, None].to(dtype)
    inside = (coord >= -1.0) & (coord <= extent)
    coord = coord.clamp(min=0.0)
    low = coord.floor().long()
    at_edge = low >= extent - 1
    low = torch.where(at_edge, torch.full_like(low, extent - 1), low)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(coord), coord - low.to(dtype))
    keep = (used & inside).to(dtype)
    weights = torch.zeros(*coord.shape, extent, device=device, dtype=dtype)
    weights.scatter_add_(-1, low[..., None], ((1.0 - frac) * keep)[..., None])
    weights.scatter_add_(-1, high[..., None], (frac * keep)[..., None])
    return weights.reshape(coord.shape[0], bins * max_grid, extent)


def roi_align(
    features: torch.Tensor,
    rois: torch.Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    aligned: bool = True,
) -> torch.Tensor:
    """Pools a fixed-size feature for every RoI.

    Args:
        features: ``[N, C, H, W]`` feature maps.
        rois: ``[K, 5]`` rows ``(batch_index, x1, y1, x2, y2)`` in input-image pixels.
        output_size: ``(out_h, out_w)`` (or one int for both).
        spatial_scale: feature pixels per image pixel (1/16 for a stride-16 map).
        sampling_ratio: points per bin and axis; ``<= 0`` chooses ``ceil(roi / out)`` per RoI.
        aligned: shift box corners by -0.5 feature pixel (the "aligned" RoIAlign).

    Returns:
        ``[K, C, out_h, out_w]`` in the dtype of ``features``.
    """
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    n_rois = rois.shape[0]
    channels, height, width = features.shape[1:]
    if n_rois == 0:
        return features.new_zeros(0, channels, out_h, out_w)
    compute = torch.float64 if features.dtype == torch.float64 else torch.float32
    boxes = rois[:, 1:].to(compute) * spatial_scale - (0.5 if aligned else 0.0)
    roi_w = boxes[:, 2] - boxes[:, 0]
    roi_h = boxes[:, 3] - boxes[:, 1]
    if not aligned:
        roi_w = roi_w.clamp(min=1.0)
        roi_h = roi_h.clamp(min=1.0)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    if sampling_ratio > 0:
        grid_h = torch.full((n_rois,), sampling_ratio, device=rois.device, dtype=torch.long)
        grid_w = grid_h
        max_h = max_w = sampling_ratio
    else:
        grid_h = torch.ceil(bin_h).long().clamp(min=0)
        grid_w = torch.ceil(bin_w).long().clamp(min=0)
        # one host sync for the largest grid; the data itself never leaves the device
        max_h, max_w = (max(int(v), 1) for v in torch.stack([grid_h.max(), grid_w.max()]).tolist())
    weights_y = _axis_weights(boxes[:, 1], bin_h, grid_h, out_h, max_h, height)
    weights_x = _axis_weights(boxes[:, 0], bin_w, grid_w, out_w, max_w, width)
    per_roi = features[rois[:, 0].long()].to(compute)  # [K, C, H, W]
    rows = torch.einsum("kih,kchw->kciw", weights_y, per_roi)
    samples = torch.einsum("kjw,kciw->kcij", weights_x, rows)
    samples = samples.reshape(n_rois, channels, out_h, max_h, out_w, max_w)
    count = (grid_h * grid_w).clamp(min=1).to(compute)
    pooled = samples.sum(dim=(3, 5)) / count[:, None, None, None]
    return pooled.to(features.dtype)


class RoIAlign(nn.Module):
    """`roi_align` as a module (no parameters)."""

    def __init__(
        self,
        output_size: int | tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int = 0,
        aligned: bool = True,
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """Pools ``[K, C, out_h, out_w]`` from ``features`` for ``rois`` ``[K, 5]``."""
        return roi_align(
            features, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def extra_repr(self) -> str:
        """The settings shown by ``print(module)``."""
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
