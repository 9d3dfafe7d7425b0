import sys
import types

import numpy as np
import pytest

from vidssl.data.flow import extract as flow_module
from vidssl.data.flow.extract import (
    FlowEstimator,
    compute_video_flow,
    dequantize_flow,
    quantize_flow,
    short_side_size,
)
from vidssl.errors import UserError
from vidssl.utils.jpeg import decode_jpeg, encode_jpeg

cv2 = pytest.importorskip("cv2")  # the [flow] extra (installed with [dev])


def smooth_texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Grey texture with structure at several scales (trackable by both estimators)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, size=(height, width)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 1.5)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
    return texture.astype(np.uint8)


def shifted_pair(dx: int, dy: int, size: int = 64) -> np.ndarray:
    """2×H×W×3 RGB frames; frame 1 is frame 0 moved right by dx and down by dy."""
    texture = np.repeat(smooth_texture(size, size)[..., None], 3, axis=2)
    return np.stack([texture, np.roll(texture, (dy, dx), axis=(0, 1))])


# (flow in px, level) worked by hand: level = round((f + 20) * 6.375), ties to even.
HAND_LEVELS = [
    (0.0, 128),  # 20 * 6.375 = 127.5 -> tie -> 128 (even); zero motion is 128
    (20.0, 255),  # 40 * 6.375 = 255
    (-20.0, 0),
    (1.0, 134),  # 21 * 6.375 = 133.875
    (-1.0, 121),  # 19 * 6.375 = 121.125
    (0.5, 131),  # 20.5 * 6.375 = 130.6875
    (25.0, 255),  # clipped to +20
    (-300.0, 0),  # clipped to -20
    (8.0, 178),  # 28 * 6.375 = 178.5 -> tie -> 178 (round-half-up would give 179)
    (-8.0, 76),  # 12 * 6.375 = 76.5 -> tie -> 76 (round-half-up: 77)
    (16.0, 230),  # 36 * 6.375 = 229.5 -> tie -> 230
    (-16.0, 26),  # 4 * 6.375 = 25.5 -> tie -> 26
]


@pytest.mark.parametrize(("value", "level"), HAND_LEVELS)
def test_quantize_levels_by_hand(value, level):
    u_only = np.zeros((2, 3, 2), np.float32)
    u_only[..., 0] = value
    image = quantize_flow(u_only)
    assert image.dtype == np.uint8 and image.shape == (2, 3, 3)
    assert (image[..., 0] == 128).all()
    assert (image[..., 1] == 128).all()  # v = 0
    assert (image[..., 2] == level).all()  # u
    v_only = u_only[..., ::-1]
    np.testing.assert_array_equal(quantize_flow(v_only), image[..., [0, 2, 1]])


def test_quantize_matches_reference_formula_bit_for_bit():
    # The releases: clip to ±20 (float32), (f + 20) * (255/40), np.round, astype uint8.
    rng = np.random.default_rng(1)
    flow = rng.normal(0, 12, size=(40, 50, 2)).astype(np.float32)
    flow[0, :10, 0] = [-16, -8, 0, 8, 16, -20, 20, 1, -1, 0.5]
    reference = np.round((np.clip(flow, -20, 20) + 20) * (255.0 / 40)).astype(np.uint8)
    image = quantize_flow(flow)
    np.testing.assert_array_equal(image[..., 2], reference[..., 0])
    np.testing.assert_array_equal(image[..., 1], reference[..., 1])


def test_dequantize_inverts_up_to_half_a_level():
    rng = np.random.default_rng(2)
    flow = rng.uniform(-20, 20, size=(16, 16, 2)).astype(np.float32)
    restored = dequantize_flow(quantize_flow(flow))
    assert restored.dtype == np.float32 and restored.shape == (16, 16, 2)
    assert np.abs(restored - flow).max() <= 0.5 / 6.375 + 1e-5
    corners = dequantize_flow(np.array([[[128, 0, 255]]], np.uint8))
    np.testing.assert_allclose(corners[0, 0], [20.0, -20.0])  # (u, v)


def test_jpeg_decodes_as_rgb_128_v_u_and_cv2_reads_reference_bgr_layout():
    yy, xx = np.mgrid[0:48, 0:64].astype(np.float32)
    flow = np.stack([xx / 64 * 30 - 15, yy / 48 * 20 - 10], axis=-1)  # u along x, v along y
    image = quantize_flow(flow)
    jpeg = encode_jpeg(image, quality=100)
    # JPEG (q100, 4:4:4) moves a level by at most a few; swapped channels would be off by ~100
    rgb = decode_jpeg(jpeg).astype(int)
    assert_close_levels(rgb[..., 0], 128)
    assert_close_levels(rgb[..., 1], image[..., 1])  # G = v
    assert_close_levels(rgb[..., 2], image[..., 2])  # B = u
    # the releases filled a BGR array [u, v, 128] and wrote it with cv2: cv2 reads ours the same
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(int)
    assert_close_levels(bgr[..., 0], image[..., 2])
    assert_close_levels(bgr[..., 1], image[..., 1])
    assert_close_levels(bgr[..., 2], 128)


def assert_close_levels(decoded, expected):
    error = np.abs(decoded - np.asarray(expected, dtype=int))
    assert error.max() <= 4 and error.mean() <= 1.0


@pytest.mark.parametrize("method", ["tvl1", "farneback"])
@pytest.mark.parametrize(("dx", "dy"), [(2, 1), (-3, 2)])
def test_known_translation_gives_its_flow(method, dx, dy):
    flow_images = compute_video_flow(shifted_pair(dx, dy), method)
    assert flow_images.shape == (1, 64, 64, 3)
    interior = flow_images[0, 12:-12, 12:-12].reshape(-1, 3)
    median = np.median(interior, axis=0)
    assert median[0] == 128
    assert abs(median[2] - round((dx + 20) * 6.375)) <= 1  # B = u = dx
    assert abs(median[1] - round((dy + 20) * 6.375)) <= 1  # G = v = dy
    restored = np.median(dequantize_flow(flow_images[0])[12:-12, 12:-12].reshape(-1, 2), axis=0)
    np.testing.assert_allclose(restored, [dx, dy], atol=0.25)


def test_static_video_is_all_128():
    frames = np.repeat(shifted_pair(0, 0)[:1], 3, axis=0)
    flow_images = compute_video_flow(frames, "tvl1")
    assert flow_images.shape == (2, 64, 64, 3)
    assert np.abs(flow_images.astype(int) - 128).max() <= 1


def test_compute_video_flow_shapes_and_short_side():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, size=(6, 32, 48, 3), dtype=np.uint8)
    assert compute_video_flow(frames, "farneback").shape == (5, 32, 48, 3)
    assert compute_video_flow(frames, "farneback", short_side=16).shape == (5, 16, 24, 3)
    assert short_side_size(240, 320, 128) == (128, 171)
    assert short_side_size(320, 240, 256) == (341, 256)
    with pytest.raises(ValueError, match="T >= 2"):
        compute_video_flow(frames[:1], "farneback")


def test_tvl1_object_is_shared_within_a_process():
    assert FlowEstimator("tvl1")._tvl1 is FlowEstimator("tvl1")._tvl1


def test_unknown_method_is_user_error():
    with pytest.raises(UserError, match="'raft' is unknown"):
        FlowEstimator("raft")


def test_missing_opencv_is_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    with pytest.raises(UserError, match=r"pip install 'vidssl\[flow\]'"):
        FlowEstimator("farneback")


def test_opencv_without_contrib_is_user_error_for_tvl1_only(monkeypatch):
    plain_cv2 = types.ModuleType("cv2")
    plain_cv2.calcOpticalFlowFarneback = cv2.calcOpticalFlowFarneback
    monkeypatch.setitem(sys.modules, "cv2", plain_cv2)
    monkeypatch.setattr(flow_module, "_TVL1_BY_PROCESS", {})
    with pytest.raises(UserError, match="opencv-contrib"):
        FlowEstimator("tvl1")
    assert FlowEstimator("farneback").method == "farneback"
