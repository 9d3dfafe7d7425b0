"""RoIAlign against bilinear samples computed by hand and an independent scalar loop."""

from __future__ import annotations

import math

import pytest
import torch

from vidssl.downstream.ava.roi_align import RoIAlign, roi_align


def _feature() -> torch.Tensor:
    """``1×1×3×4`` map with f[y, x] = 100·y + x² (x² makes the number of samples visible)."""
    y = torch.arange(3, dtype=torch.float64)[:, None]
    x = torch.arange(4, dtype=torch.float64)[None, :]
    return (100 * y + x**2)[None, None]


def _pool(rois: list[list[float]], out: tuple[int, int], **kw: object) -> torch.Tensor:
    return roi_align(_feature(), torch.tensor(rois, dtype=torch.float64), out, **kw)


def test_unaligned_single_sample_is_the_bilinear_value_at_the_box_centre() -> None:
    # box (0.5, 0.5)-(2.5, 1.5): centre (x=1.5, y=1.0) -> 100 + (1 + 4)/2
    value = _pool([[0, 0.5, 0.5, 2.5, 1.5]], (1, 1), sampling_ratio=1, aligned=False)
    assert value.item() == pytest.approx(102.5)


def test_aligned_shifts_the_box_by_half_a_pixel() -> None:
    # aligned: corners -0.5 -> (0, 0)-(2, 1); centre (x=1, y=0.5) -> 50 + 1
    value = _pool([[0, 0.5, 0.5, 2.5, 1.5]], (1, 1), sampling_ratio=1, aligned=True)
    assert value.item() == pytest.approx(51.0)


def test_adaptive_sampling_ratio_per_roi_with_scale() -> None:
    rois = [[0, 1.0, 1.0, 9.0, 3.0], [0, 1.0, 1.0, 3.0, 3.0]]
    out = _pool(rois, (1, 2), spatial_scale=0.5, sampling_ratio=0, aligned=True)
    # RoI 1 in feature pixels (0,0)-(4,1): bins 2 wide -> 2 x-samples per bin, 1 y-sample (y=0.5).
    # bin 0: x=0.5 -> 0.5, x=1.5 -> 2.5, mean 1.5; bin 1: x=2.5 -> 6.5, x=3.5 clamps to 3 -> 9.
    # RoI 2 (0,0)-(1,1): bins 0.5 wide -> 1 sample each at x=0.25 (0.25) and x=0.75 (0.75).
    expected = torch.tensor([[51.5, 57.75], [50.25, 50.75]], dtype=torch.float64)
    assert torch.allclose(out[:, 0, 0], expected)
    fixed = _pool(rois[:1], (1, 2), spatial_scale=0.5, sampling_ratio=1, aligned=True)
    # one sample per bin at x=1 (1) and x=3 (9)
    assert torch.allclose(fixed[0, 0, 0], torch.tensor([51.0, 59.0], dtype=torch.float64))


def test_boxes_past_the_borders() -> None:
    # (2.5,-2)-(4.5,-0.5), 2x2 samples: y=-1.625 is outside (0), y=-0.875 clamps to row 0;
    # x=3 and x=4 both read column 3 (9). Sum 18 over 4 samples.
    value = _pool([[0, 2.5, -2.0, 4.5, -0.5]], (1, 1), sampling_ratio=2, aligned=False)
    assert value.item() == pytest.approx(4.5)
    # fully right of the map (x > W): every sample is 0
    assert _pool([[0, 5.0, 0.0, 7.0, 2.0]], (1, 1), sampling_ratio=2, aligned=False).item() == 0
    # bottom-right corner: y=2.5 and x=3.5 clamp to the last row/column -> 200 + 9
    corner = _pool([[0, 3.0, 2.0, 4.0, 3.0]], (1, 1), sampling_ratio=1, aligned=False)
    assert corner.item() == pytest.approx(209.0)


def test_degenerate_boxes() -> None:
    point = [[0, 1.5, 1.5, 1.5, 1.5]]
    # aligned: a 0x0 RoI has an adaptive grid of 0 samples -> 0
    assert _pool(point, (2, 2), aligned=True).abs().sum().item() == 0
    # unaligned: the RoI is widened to 1x1 at (1.5, 1.5): one sample at (2, 2) -> 204
    assert _pool(point, (1, 1), aligned=False).item() == pytest.approx(204.0)
    # an inverted aligned box also yields 0 (no samples)
    assert _pool([[0, 3.0, 3.0, 1.0, 1.0]], (1, 1), aligned=True).item() == 0


def _reference(
    features: torch.Tensor, roi: list[float], out: int, scale: float, ratio: int, aligned: bool
) -> torch.Tensor:
    """Scalar loops following the RoIAlign definition (float64)."""
    _, channels, height, width = features.shape
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (v * scale - offset for v in roi[1:])
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    bw, bh = rw / out, rh / out
    gh = ratio if ratio > 0 else math.ceil(rh / out)
    gw = ratio if ratio > 0 else math.ceil(rw / out)
    result = torch.zeros(channels, out, out, dtype=torch.float64)
    fmap = features[int(roi[0])]
    for ph in range(out):
        for pw in range(out):
            total = torch.zeros(channels, dtype=torch.float64)
            for iy in range(max(gh, 0)):
                for ix in range(max(gw, 0)):
                    y = y1 + ph * bh + (iy + 0.5) * bh / gh
                    x = x1 + pw * bw + (ix + 0.5) * bw / gw
                    if y < -1 or y > height or x < -1 or x > width:
                        continue
                    y, x = max(y, 0.0), max(x, 0.0)
                    yl, xl = int(y), int(x)
                    yh, xh = yl + 1, xl + 1
                    if yl >= height - 1:
                        yl = yh = height - 1
                        y = float(yl)
                    if xl >= width - 1:
                        xl = xh = width - 1
                        x = float(xl)
                    ly, lx = y - yl, x - xl
                    total += (
                        (1 - ly) * (1 - lx) * fmap[:, yl, xl]
                        + (1 - ly) * lx * fmap[:, yl, xh]
                        + ly * (1 - lx) * fmap[:, yh, xl]
                        + ly * lx * fmap[:, yh, xh]
                    )
            result[:, ph, pw] = total / max(gh * gw, 1)
    return result


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("ratio", [0, 2])
def test_random_rois_match_the_scalar_definition(aligned: bool, ratio: int) -> None:
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(2, 3, 7, 9, generator=generator, dtype=torch.float64)
    corners = torch.rand(12, 4, generator=generator, dtype=torch.float64) * 180 - 20
    rois = torch.cat([torch.randint(0, 2, (12, 1), generator=generator).double(), corners], 1)
    rois[:, [1, 3]] = rois[:, [1, 3]].sort(dim=1).values
    rois[:, [2, 4]] = rois[:, [2, 4]].sort(dim=1).values
    module = RoIAlign(3, spatial_scale=1 / 16, sampling_ratio=ratio, aligned=aligned)
    out = module(features, rois)
    for index in range(12):
        expected = _reference(features, rois[index].tolist(), 3, 1 / 16, ratio, aligned)
        assert torch.allclose(out[index], expected, atol=1e-10)


def test_batch_index_float32_and_gradients() -> None:
    features = torch.stack([_feature()[0], -_feature()[0]]).float().requires_grad_()
    rois = torch.tensor([[1, 0.5, 0.5, 2.5, 1.5], [0, 0.5, 0.5, 2.5, 1.5]])
    out = roi_align(features, rois, 1, sampling_ratio=1, aligned=False)
    assert out.dtype == torch.float32 and out.shape == (2, 1, 1, 1)
    assert out.flatten().tolist() == pytest.approx([-102.5, 102.5])
    out.sum().backward()
    # the centre (1.5, 1.0) splits its weight between columns 1 and 2 of row 1, in both maps
    grad = features.grad[0, 0]
    assert grad[1, 1].item() == pytest.approx(0.5) and grad[1, 2].item() == pytest.approx(0.5)
    assert grad.sum().item() == pytest.approx(1.0)
    assert roi_align(features, torch.zeros(0, 5), 7).shape == (0, 1, 7, 7)
