"""Optical flow (TV-L1 or Farneback), quantised and stored exactly like the CoCLR/ViCC releases.

The releases (MemDPC ``process_data/src/extract_ff.py``, reused by CoCLR, CPR and ViCC) compute
TV-L1 between grey frames ``k`` and ``k+1``, clip each component to ±20 pixels, map it to
``round((f + 20) · 255/40)`` as uint8 (zero motion → 128) and write one 3-channel JPEG per frame
pair whose channels, **decoded as RGB**, are ``[128, v (dy), u (dx)]`` (they filled a BGR array
``[u, v, 128]`` and wrote it with OpenCV). We build the RGB array ``[128, v, u]`` directly and
encode it with Pillow, so both PIL (RGB) and ``cv2.imread`` (BGR ``[u, v, 128]``) read our files
exactly like theirs.

Rounding: the reference rounds with ``np.round`` (round half to even) on float32 values; we do the
same, so our levels are bit-identical to theirs. Exact ties occur at ``f = −16, −8, 0, 8, 16``
(levels 25.5, 76.5, 127.5, 178.5, 229.5 → 26, 76, 128, 178, 230); round-half-up would differ at
``f = −8`` (77) and ``f = 8`` (179), by one level, far below the JPEG noise.

``cv2`` is the optional ``[flow]`` extra (``opencv-contrib-python-headless``) and is imported
lazily through `import_cv2`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from vidssl.errors import UserError

FLOW_BOUND = 20.0
"""Flow components are clipped to ``[-FLOW_BOUND, FLOW_BOUND]`` pixels before quantisation."""
FLOW_SCALE = 255.0 / (2 * FLOW_BOUND)
"""Quantisation levels per pixel of motion (6.375)."""
CONSTANT_CHANNEL = 128
"""Value of the unused first (R) channel of a flow JPEG."""
METHODS = ("tvl1", "farneback")
"""Flow estimators understood by `FlowEstimator`."""

FARNEBACK_PARAMS: dict[str, float | int] = {
    "pyr_scale": 0.5,  # each pyramid level halves the image
    "levels": 3,  # pyramid levels above the full-resolution image
    "winsize": 15,  # averaging window: larger is smoother and tolerates faster motion
    "iterations": 3,  # iterations per pyramid level
    "poly_n": 5,  # neighbourhood of the per-pixel polynomial expansion
    "poly_sigma": 1.2,  # Gaussian sigma of that expansion (1.1–1.2 for poly_n = 5)
    "flags": 0,
}
"""`cv2.calcOpticalFlowFarneback` parameters: OpenCV's documented example values."""

_INSTALL_HINT = "pip install 'vidssl[flow]' (opencv-contrib-python-headless)"


def import_cv2(*, need_optflow: bool = False) -> Any:
    """Imports OpenCV, the optional ``[flow]`` dependency.

    Args:
        need_optflow: also require the contrib module ``cv2.optflow`` (TV-L1).

    Raises:
        UserError: OpenCV (or its contrib part) is not installed.
    """
    try:
        import cv2
    except ImportError as error:
        raise UserError(f"optical flow needs OpenCV ({error}); run: {_INSTALL_HINT}") from None
    if need_optflow and not hasattr(getattr(cv2, "optflow", None), "DualTVL1OpticalFlow_create"):
        raise UserError(
            "TV-L1 flow needs cv2.optflow from opencv-contrib, which this OpenCV lacks; "
            f"uninstall opencv-python and run: {_INSTALL_HINT}"
        )
    return cv2


def quantize_flow(flow: np.ndarray) -> np.ndarray:
    """Quantises a flow field into the releases' 3-channel image layout.

    Args:
        flow: ``H×W×2`` float array, channel 0 = u (dx), channel 1 = v (dy), in pixels.

    Returns:
        ``H×W×3`` uint8 RGB image ``[128, v_q, u_q]`` with
        ``q = round((clip(f, -20, 20) + 20) · 255/40)`` computed in float32, ties to even.
    """
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"quantize_flow expects H×W×2 flow, got shape {flow.shape}")
    clipped = np.clip(flow.astype(np.float32, copy=False), -FLOW_BOUND, FLOW_BOUND)
    levels = np.round((clipped + np.float32(FLOW_BOUND)) * np.float32(FLOW_SCALE))
    levels = levels.astype(np.uint8)
    image = np.empty((*flow.shape[:2], 3), dtype=np.uint8)
    image[..., 0] = CONSTANT_CHANNEL
    image[..., 1] = levels[..., 1]
    image[..., 2] = levels[..., 0]
    return image


def dequantize_flow(image: np.ndarray) -> np.ndarray:
    """Inverts `quantize_flow` (up to quantisation: ±0.08 px inside ±20 px).

    Args:
        image: ``H×W×3`` uint8 RGB flow image ``[128, v_q, u_q]`` (e.g. a decoded flow JPEG).

    Returns:
        ``H×W×2`` float32 flow, channel 0 = u (dx), channel 1 = v (dy), in pixels.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"dequantize_flow expects an H×W×3 image, got shape {image.shape}")
    levels = np.stack([image[..., 2], image[..., 1]], axis=-1).astype(np.float32)
    return levels / np.float32(FLOW_SCALE) - np.float32(FLOW_BOUND)


_TVL1_BY_PROCESS: dict[str, Any] = {}


def _tvl1_object(cv2: Any) -> Any:
    """The process's one `DualTVL1OpticalFlow` (creating it allocates its pyramid buffers)."""
    if "tvl1" not in _TVL1_BY_PROCESS:
        _TVL1_BY_PROCESS["tvl1"] = cv2.optflow.DualTVL1OpticalFlow_create()
    return _TVL1_BY_PROCESS["tvl1"]


class FlowEstimator:
    """Dense flow between two grey frames: ``estimator(prev, next) -> H×W×2 float32``.

    ``tvl1`` is `cv2.optflow.DualTVL1OpticalFlow_create()` with OpenCV's default parameters (as
    in the releases); one TV-L1 object is shared by every estimator of a process. ``farneback``
    is `cv2.calcOpticalFlowFarneback` with `FARNEBACK_PARAMS`. The flow maps ``prev`` onto
    ``next``: ``prev(y, x) ≈ next(y + v, x + u)``.

    Args:
        method: ``"tvl1"`` or ``"farneback"``.

    Raises:
        UserError: unknown method, or OpenCV / its contrib module is missing.
    """

    def __init__(self, method: str = "tvl1") -> None:
        if method not in METHODS:
            raise UserError(f"flow method {method!r} is unknown; expected one of {METHODS}")
        self.method = method
        self._cv2 = import_cv2(need_optflow=method == "tvl1")
        self._tvl1 = _tvl1_object(self._cv2) if method == "tvl1" else None

    def __call__(self, prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
        """Flow from ``prev_gray`` to ``next_gray`` (both ``H×W`` uint8)."""
        if self._tvl1 is not None:
            return self._tvl1.calc(prev_gray, next_gray, None)
        return self._cv2.calcOpticalFlowFarneback(prev_gray, next_gray, None, **FARNEBACK_PARAMS)


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(height, width)`` after scaling so that the short side is ``short_side`` (aspect kept)."""
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def gray_frames(
    frames: Iterable[np.ndarray], *, short_side: int | None = None
) -> Iterator[np.ndarray]:
    """Converts ``H×W×3`` uint8 RGB frames to grey, optionally resized to a short side.

    Grey uses OpenCV's BT.601 weights (the releases' ``COLOR_BGR2GRAY`` on BGR frames gives the
    same values). Resizing uses area averaging when shrinking and bilinear when enlarging.

    Raises:
        ValueError: a frame is not ``H×W×3`` uint8 or differs in size from the first frame.
    """
    cv2 = import_cv2()
    first_shape: tuple[int, ...] | None = None
    for index, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {index} is {frame.dtype} {frame.shape}; expected H×W×3 uint8")
        if first_shape is None:
            first_shape = frame.shape
        elif frame.shape != first_shape:
            raise ValueError(f"frame {index} has shape {frame.shape}; frame 0 has {first_shape}")
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if short_side is not None:
            height, width = short_side_size(*gray.shape, short_side)
            if (height, width) != gray.shape:
                shrink = height < gray.shape[0]
                interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
                gray = cv2.resize(gray, (width, height), interpolation=interpolation)
        yield gray


def iter_flow_images(
    frames: Iterable[np.ndarray], method: str = "tvl1", *, short_side: int | None = None
) -> Iterator[np.ndarray]:
    """Streams quantised flow images, one per consecutive frame pair (k, k+1).

    Holds only two frames at a time, so arbitrarily long videos use constant memory.

    Args:
        frames: ``H×W×3`` uint8 RGB frames in temporal order.
        method: ``"tvl1"`` or ``"farneback"``.
        short_side: resize frames to this short side before computing flow.

    Yields:
        ``H×W×3`` uint8 RGB flow images ``[128, v_q, u_q]`` (see `quantize_flow`).
    """
    estimator = FlowEstimator(method)
    previous: np.ndarray | None = None
    for gray in gray_frames(frames, short_side=short_side):
        if previous is not None:
            yield quantize_flow(estimator(previous, gray))
        previous = gray


def compute_video_flow(
    frames: np.ndarray, method: str = "tvl1", *, short_side: int | None = None
) -> np.ndarray:
    """Quantised flow of a whole clip.

    Args:
        frames: ``T×H×W×3`` uint8 RGB frames, ``T >= 2``.
        method: ``"tvl1"`` or ``"farneback"``.
        short_side: resize frames to this short side before computing flow.

    Returns:
        ``(T−1)×H'×W'×3`` uint8 flow images ``[128, v_q, u_q]``; image k is the flow from frame k
        to frame k+1.
    """
    if frames.ndim != 4 or frames.shape[0] < 2:
        raise ValueError(
            f"compute_video_flow expects T×H×W×3 frames with T >= 2, got {frames.shape}"
        )
    return np.stack(list(iter_flow_images(frames, method, short_side=short_side)))


def set_cv2_threads(threads: int) -> Callable[[], None]:
    """Sets OpenCV's thread count; returns a function that restores the previous value."""
    cv2 = import_cv2()
    previous = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    return lambda: cv2.setNumThreads(previous)
