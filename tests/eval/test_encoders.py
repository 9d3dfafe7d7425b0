"""`adapt_input` / `InputSpec`: each encoder gets the channels, order and residual it expects.

Inputs are hand-built so that every channel and frame has its own value; the expected outputs are
written out by hand.
"""

from __future__ import annotations

import pytest
import torch

from vidssl.errors import UserError
from vidssl.eval.encoders import InputSpec, adapt_input


def _clip() -> torch.Tensor:
    """[B=1, C=3, T=3, H=1, W=1] with value 10·c + t (c: channel, t: frame)."""
    values = [[10 * c + t for t in range(3)] for c in range(3)]
    return torch.tensor(values, dtype=torch.float32).reshape(1, 3, 3, 1, 1)


def _values(x: torch.Tensor) -> list[list[float]]:
    return x.reshape(x.shape[-4], x.shape[-3]).tolist()


def test_rgb_encoder_gets_the_clip_unchanged():
    assert _values(adapt_input(_clip(), InputSpec())) == [[0, 1, 2], [10, 11, 12], [20, 21, 22]]


def test_bgr_encoder_gets_reversed_channels():
    out = adapt_input(_clip(), InputSpec(channel_order="bgr"))
    assert _values(out) == [[20, 21, 22], [10, 11, 12], [0, 1, 2]]


def test_two_channel_flow_encoder_gets_v_and_u_not_the_constant_channel():
    # a flow JPEG decodes to [128, v, u]: channel 0 is the constant, v and u follow
    out = adapt_input(_clip(), InputSpec(in_channels=2, modality="flow"))
    assert _values(out) == [[10, 11, 12], [20, 21, 22]]


def test_residual_encoder_gets_previous_minus_current_frame():
    # pcl: prev − x with prev[0] = x[T−1]: per channel [2 − 0, 0 − 1, 1 − 2]
    out = adapt_input(_clip(), InputSpec(residual="pcl"))
    assert _values(out) == [[2, -1, -1]] * 3
    vcp = adapt_input(_clip(), InputSpec(residual="vcp"))
    assert _values(vcp) == [[1.5, 0.0, 0.0]] * 3


def test_residual_is_taken_before_the_channel_flip():
    clip = _clip()
    clip[0, 0, 1] = 5.0  # channel 0 frames [0, 5, 2]: pcl residual [2, -5, 3]
    out = adapt_input(clip, InputSpec(residual="pcl", channel_order="bgr"))
    assert _values(out)[2] == [2, -5, 3]


def test_batch_dimensions_before_the_channels_are_kept():
    clips = torch.stack([_clip()[0], _clip()[0] + 100])  # [2, 3, 3, 1, 1]
    out = adapt_input(clips.unsqueeze(1), InputSpec(in_channels=2))  # [2, 1, 2, 3, 1, 1]
    assert out.shape == (2, 1, 2, 3, 1, 1)
    assert out[1, 0, :, :, 0, 0].tolist() == [[110, 111, 112], [120, 121, 122]]


def test_other_channel_counts_are_refused():
    with pytest.raises(UserError, match="takes 1 input channels"):
        adapt_input(_clip(), InputSpec(in_channels=1))


def test_normalization_of_three_channel_encoders_is_theirs():
    spec = InputSpec(mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    assert spec.normalization == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))


def test_normalization_of_two_channel_flow_encoders_leaves_the_constant_channel():
    # the decoded clip has 3 channels; the dropped channel 0 gets mean 0.5 / std 1
    spec = InputSpec(mean=(0.45, 0.55), std=(0.2, 0.3), in_channels=2)
    assert spec.normalization == ((0.5, 0.45, 0.55), (1.0, 0.2, 0.3))


def test_normalization_with_one_value_is_repeated_per_channel():
    spec = InputSpec(mean=(0.5,), std=(0.25,))
    assert spec.normalization == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
