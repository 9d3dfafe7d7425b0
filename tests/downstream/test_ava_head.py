"""The AVA RoI head: time average → RoIAlign → max over bins → dropout → linear; and its loss."""

from __future__ import annotations

import math

import pytest
import torch

from vidssl.downstream.ava.head import AvaRoIHead, ava_loss


def test_head_pools_time_then_takes_the_max_over_the_box() -> None:
    head = AvaRoIHead(in_channels=2, num_classes=3).eval()
    # channel 0: value 1 at t=0 and 3 at t=1 everywhere (mean 2); channel 1: a spatial ramp
    # x (0..6) at both times, so the max over a box is its right-most sampled value
    feature = torch.zeros(1, 2, 2, 7, 7)
    feature[0, 0, 0], feature[0, 0, 1] = 1.0, 3.0
    feature[0, 1] = torch.arange(7.0)
    with torch.no_grad():
        head.projection.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
        head.projection.bias.copy_(torch.tensor([0.0, 0.5, 0.0]))
    # box (8, 8)-(56, 56) px -> feature (0.5, 0.5)-(3.5, 3.5) -> aligned (0, 0)-(3, 3): 7 bins of
    # 3/7, one sample each; the right-most at x = 3 - 1.5/7 = 39/14
    logits = head(feature, torch.tensor([[0.0, 8.0, 8.0, 56.0, 56.0]]))
    right = 39 / 14
    assert logits.shape == (1, 3)
    assert torch.allclose(logits[0], torch.tensor([2.0, right + 0.5, 2.0 - right]), atol=1e-5)


def test_head_output_shape_and_dropout_in_training() -> None:
    head = AvaRoIHead(in_channels=8)
    feature = torch.randn(2, 8, 1, 7, 7)
    boxes = torch.tensor([[0.0, 0, 0, 112, 112], [1.0, 10, 20, 60, 100], [1.0, 0, 0, 5, 5]])
    assert head(feature, boxes).shape == (3, 80)
    assert head.dropout.p == 0.5 and head.roi_align.spatial_scale == 1 / 16
    assert head.roi_align.aligned and head.roi_align.sampling_ratio == 0


def test_loss_is_mean_binary_cross_entropy_of_the_sigmoid() -> None:
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    targets = torch.tensor([[1, 0], [0, 1]])
    sigmoid = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected = (
        -(math.log(0.5) + math.log(1 - sigmoid(2.0)) + math.log(1 - sigmoid(-1.0)) + math.log(0.5))
        / 4
    )
    assert ava_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)
