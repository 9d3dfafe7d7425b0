"""A sanity probe: how much class signal does each kind of cue carry in a synthetic dataset?

Four crude, hand-made features are classified by 1-nearest-neighbour:

- ``colour``: the mean RGB colour of the video (3 numbers);
- ``pixels``: ``colour`` plus the first frame downsampled to 8×6 (what a lazy RGB model sees);
- ``structure``: colour-blind, rotation-invariant shape/texture statistics of single frames
  (angular Fourier harmonics of the most textured region's polar image);
- ``motion``: statistics of Farneback optical flow after removing the camera's median motion
  (mean/std of horizontal speed, vertical velocity, divergence and curl of the moving pixels).

Features that have a left/right sign (horizontal velocity, curl) enter as magnitudes, because the
classes are closed under mirroring. The dataset is built so that ``motion`` ≫ ``structure`` >
``colour`` ≈ chance.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import av
import numpy as np

from vidssl.errors import UserError

FEATURE_KINDS = ("colour", "pixels", "structure", "motion")
RINGS, ANGLES, HARMONICS = 6, 32, 8  # polar grid and angular harmonics of `structure_feature`
MOVING_THRESHOLD = 0.75  # pixels/frame of flow, after removing the camera's median motion


def decode_frames(path: str | os.PathLike, max_frames: int | None = None) -> np.ndarray:
    """Decodes up to ``max_frames`` frames of a video as ``T×H×W×3`` uint8 RGB."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    return np.stack(frames)


def _gray(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def colour_feature(frames: np.ndarray) -> np.ndarray:
    """Mean RGB colour over all pixels of all frames.

    Colour statistics beyond the mean (e.g. the standard deviation) are left out on purpose:
    they also measure how much of the frame the object covers, which depends on its shape.
    """
    return frames.reshape(-1, 3).astype(np.float32).mean(0)


def pixels_feature(frames: np.ndarray) -> np.ndarray:
    """`colour_feature` plus the first frame block-averaged to an 8×6 RGB thumbnail."""
    first = frames[0].astype(np.float32)
    rows = np.array_split(np.arange(first.shape[0]), 6)
    cols = np.array_split(np.arange(first.shape[1]), 8)
    thumbnail = np.array([[first[r][:, c].mean((0, 1)) for c in cols] for r in rows])
    return np.concatenate([colour_feature(frames), thumbnail.ravel()])


def _cv2():
    try:
        import cv2
    except ImportError:
        raise UserError(
            "the synthetic-data probe needs OpenCV; pip install 'vidssl[flow]'"
        ) from None
    return cv2


def structure_feature(frames: np.ndarray, n_frames: int = 4) -> np.ndarray:
    """Colour-blind, rotation-invariant shape/texture statistics of the most textured region.

    Per frame (``n_frames`` spread over the video, each used alone): the high-passed luma is
    normalised by its contrast, the object is located as the region of high local energy (the
    background is smooth plus fine grain), and its polar image around the energy centroid is
    summarised by the magnitudes of angular Fourier harmonics 0-8 on 6 rings (n-fold symmetry
    of outline and pattern, independent of orientation) plus the ring energy profile.
    """
    cv2 = _cv2()
    picks = np.linspace(0, len(frames) - 1, n_frames).round().astype(np.int64)
    per_frame = []
    for gray in _gray(frames[picks]):
        high_pass = gray - cv2.blur(gray, (7, 7))
        energy = cv2.blur(high_pass**2, (5, 5))
        weights = np.where(energy > 6.0 * np.median(energy), energy, 0.0)
        if weights.sum() <= 0:
            per_frame.append(np.zeros(RINGS * (HARMONICS + 1) + RINGS))
            continue
        ys, xs = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]]
        total = weights.sum()
        cy, cx = (weights * ys).sum() / total, (weights * xs).sum() / total
        radius = np.sqrt(2.0 * (weights * ((ys - cy) ** 2 + (xs - cx) ** 2)).sum() / total)
        contrast = high_pass / (np.sqrt((weights * high_pass**2).sum() / total) + 1e-6)
        reach = float(max(radius * 1.1, 2.0))
        pad = int(np.ceil(reach)) + 2  # samples outside the frame read zeros, not garbage
        polar = cv2.warpPolar(
            np.pad(contrast.astype(np.float32), pad),
            (RINGS * 4, ANGLES),  # (radial samples, angular samples)
            (float(cx) + pad, float(cy) + pad),
            reach,
            cv2.INTER_LINEAR + cv2.WARP_POLAR_LINEAR,
        )  # ANGLES × radial samples
        rings = polar.reshape(ANGLES, RINGS, 4).mean(axis=2).T  # RINGS × ANGLES
        harmonics = np.abs(np.fft.rfft(rings, axis=1))[:, : HARMONICS + 1]
        harmonics /= np.linalg.norm(harmonics, axis=1, keepdims=True) + 1e-6
        profile = (polar**2).reshape(ANGLES, RINGS, 4).mean(axis=(0, 2))
        per_frame.append(np.concatenate([harmonics.ravel(), profile / (profile.sum() + 1e-6)]))
    return np.mean(per_frame, axis=0)


def motion_feature(frames: np.ndarray) -> np.ndarray:
    """Statistics of the moving pixels' Farneback flow (needs OpenCV, the ``[flow]`` extra)."""
    cv2 = _cv2()
    gray = np.clip(_gray(frames), 0, 255).astype(np.uint8)
    height, width = gray.shape[1:]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    series = []
    for previous, current in itertools.pairwise(gray):
        flow = cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 9, 3, 5, 1.1, 0)
        flow -= np.median(flow.reshape(-1, 2), axis=0)  # camera jitter moves the whole frame
        u, v = flow[..., 0], flow[..., 1]
        moving = np.hypot(u, v) > MOVING_THRESHOLD
        fraction = float(moving.mean())
        if moving.sum() < 4:
            series.append([0.0, 0.0, 0.0, 0.0, fraction])
            continue
        x, y = xs[moving] - xs[moving].mean(), ys[moving] - ys[moving].mean()
        spread = float(np.mean(x * x + y * y)) + 1.0
        divergence = float(np.mean(x * u[moving] + y * v[moving])) / spread
        curl = float(np.mean(x * v[moving] - y * u[moving])) / spread
        series.append(
            [float(u[moving].mean()), float(v[moving].mean()), divergence, curl, fraction]
        )
    stats = np.asarray(series)
    u, v, divergence, curl, fraction = stats.T
    return np.array(
        [
            abs(u.mean()), np.abs(u).mean(), u.std(),
            v.mean(), np.abs(v).mean(), v.std(),
            divergence.mean(), divergence.std(),
            abs(curl.mean()), curl.std(),
            fraction.mean(),
        ]
    )  # fmt: skip


FEATURES = {
    "colour": colour_feature,
    "pixels": pixels_feature,
    "structure": structure_feature,
    "motion": motion_feature,
}


def nearest_neighbour_accuracy(
    features: np.ndarray, labels: np.ndarray, sources: np.ndarray, query: np.ndarray
) -> float:
    """1-NN accuracy of the ``query`` rows, searching only rows of *other* sources.

    Features are standardised per dimension, then compared by Euclidean distance. Excluding
    every row that shares the query's source (class and group) stops sibling clips, which share
    their appearance, from answering for each other.
    """
    standard = (features - features.mean(0)) / (features.std(0) + 1e-9)
    hits = []
    for row in np.flatnonzero(query):
        distance = np.sum((standard - standard[row]) ** 2, axis=1)
        distance[sources == sources[row]] = np.inf
        if np.isfinite(distance).any():
            hits.append(labels[int(distance.argmin())] == labels[row])
    return float(np.mean(hits)) if hits else float("nan")


def random_neighbour_accuracy(labels: np.ndarray, sources: np.ndarray, query: np.ndarray) -> float:
    """Chance level of `nearest_neighbour_accuracy`: the expected hit rate of a random neighbour.

    With few sources per class this is below ``1 / classes``: a query's own source is excluded,
    so fewer same-class candidates remain (4 groups of 10 classes: 3 of 39 sources, 7.7%).
    """
    rates = []
    for row in np.flatnonzero(query):
        eligible = sources != sources[row]
        if eligible.any():
            rates.append(np.mean(labels[eligible] == labels[row]))
    return float(np.mean(rates)) if rates else float("nan")


def probe_signal_split(
    root: str | os.PathLike, *, max_frames: int | None = 32, kinds: tuple[str, ...] = FEATURE_KINDS
) -> dict[str, float]:
    """Leave-source-out 1-NN accuracy of each feature kind on a synthetic dataset.

    Args:
        root: a folder written by `vidssl.data.synthetic.dataset.make_synthetic_dataset`.
        max_frames: frames decoded per video (from the start).
        kinds: feature kinds to score, from `FEATURE_KINDS`.

    Returns:
        ``{kind: accuracy}`` over all videos (each searched against the other sources), plus
        ``chance`` (`random_neighbour_accuracy`).
    """
    import json

    summary = json.loads((Path(root) / "synth.json").read_text())
    videos = summary["videos"]
    labels = np.array([video["class_id"] for video in videos])
    sources = np.array([video["class_id"] * 1000 + video["group"] for video in videos])
    features: dict[str, list[np.ndarray]] = {kind: [] for kind in kinds}
    for video in videos:
        frames = decode_frames(Path(root) / "UCF-101" / video["path"], max_frames)
        for kind in kinds:
            features[kind].append(FEATURES[kind](frames))
    everyone = np.ones(len(videos), dtype=bool)
    result = {
        kind: nearest_neighbour_accuracy(np.stack(rows), labels, sources, everyone)
        for kind, rows in features.items()
    }
    result["chance"] = random_neighbour_accuracy(labels, sources, everyone)
    return result
