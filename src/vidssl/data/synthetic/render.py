"""Rendering of the synthetic action videos: textured background, one textured object, noise.

Everything is numpy. Shapes are signed-distance functions in the object's unit frame (radius 1),
anti-aliased over one pixel; textures are functions of the same unit coordinates, so they rotate
and scale with the object (optical flow sees spin and zoom on the texture).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vidssl.data.synthetic.motion import BASE_RADIUS, SHAPES, TEXTURES, Trajectory

JITTER_MARGIN = 2  # camera jitter is at most this many pixels each way
TEXTURE_FREQUENCY = (0.7, 1.2)  # pattern cycles per object radius (period 0.83-1.43 radii)
SPOKES = 3  # light/dark sector pairs of the ``spokes`` pattern

Array = np.ndarray


@dataclass(frozen=True)
class SourceLook:
    """Appearance shared by every clip of one source group.

    Attributes:
        shape: object outline, one of `SHAPES`.
        texture: object pattern, one of `TEXTURES`.
        cue: whether ``(shape, texture)`` is the class signature (else drawn uniformly).
        texture_frequency: pattern cycles per object radius.
        object_colors: the pattern's two RGB colours.
        background_colors: the background's two RGB colours, blended by smooth noise.
        background_cells: coarse noise grid size (more cells = busier background).
        background_seed: seed of the background's noise fields.
        grain: standard deviation of the static per-pixel background texture.
        noise_sigma: standard deviation of per-frame sensor noise.
        base_radius: object radius in units of the frame height.
    """

    shape: str
    texture: str
    cue: bool
    texture_frequency: float
    object_colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    background_colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    background_cells: int
    background_seed: int
    grain: float
    noise_sigma: float
    base_radius: float


def _luma(color: Array) -> float:
    return float(0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2])


def draw_look(
    rng: np.random.Generator, signature: tuple[str, str], cue_probability: float
) -> SourceLook:
    """Draws a group's appearance; only shape and texture depend on the class (via ``signature``).

    Colours are uniform RGB, redrawn until two luma-contrast constraints hold (they do not
    depend on the class): the pattern's two colours differ in luma by at least 50, and each is
    at least 25 luma levels outside the range of the background's two colours. Flow is computed
    on grey levels, so equal-luma objects would be invisible to it.
    """
    cue = bool(rng.random() < cue_probability)
    if cue:
        shape, texture = signature
    else:
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
    while True:
        object_colors = rng.integers(0, 256, size=(2, 3))
        background_colors = rng.integers(0, 256, size=(2, 3))
        object_lumas = [_luma(color) for color in object_colors]
        low, high = sorted(_luma(color) for color in background_colors)
        if abs(object_lumas[0] - object_lumas[1]) >= 50 and all(
            luma <= low - 25 or luma >= high + 25 for luma in object_lumas
        ):
            break
    return SourceLook(
        shape=shape,
        texture=texture,
        cue=cue,
        texture_frequency=float(rng.uniform(*TEXTURE_FREQUENCY)),
        object_colors=tuple(tuple(int(c) for c in color) for color in object_colors),
        background_colors=tuple(tuple(int(c) for c in color) for color in background_colors),
        background_cells=int(rng.integers(3, 8)),
        background_seed=int(rng.integers(2**31)),
        grain=float(rng.uniform(2.0, 8.0)),
        noise_sigma=float(rng.uniform(1.0, 4.0)),
        base_radius=float(rng.uniform(*BASE_RADIUS)),
    )


# Signed distance (negative inside) of each shape in unit coordinates, radius about 1.
def _polygon(u: Array, v: Array, sides: int, apothem: float) -> Array:
    angles = 2.0 * math.pi * np.arange(sides) / sides - math.pi / 2
    distances = [u * math.cos(a) + v * math.sin(a) for a in angles]
    return np.max(distances, axis=0) - apothem


SHAPE_DISTANCE: dict[str, Callable[[Array, Array], Array]] = {
    "disc": lambda u, v: np.hypot(u, v) - 1.0,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) - 0.8,
    "triangle": lambda u, v: _polygon(u, v, 3, 0.55),
    "diamond": lambda u, v: (np.abs(u) + np.abs(v)) / math.sqrt(2.0) - 0.72,
    "plus": lambda u, v: np.minimum(
        np.maximum(np.abs(u) - 1.0, np.abs(v) - 0.38), np.maximum(np.abs(u) - 0.38, np.abs(v) - 1.0)
    ),
    "star": lambda u, v: np.hypot(u, v) - (0.68 + 0.32 * np.cos(5.0 * np.arctan2(v, u))),
    "hexagon": lambda u, v: _polygon(u, v, 6, 0.87),
    "ring": lambda u, v: np.abs(np.hypot(u, v) - 0.68) - 0.32,
}


def _square_wave(phase: Array) -> Array:
    """1 on the first half of each unit period, 0 on the second (soft edges are not needed)."""
    return (np.mod(phase, 1.0) < 0.5).astype(np.float32)


# Pattern value in [0, 1] at unit coordinates, for ``f`` cycles per radius.
TEXTURE_VALUE: dict[str, Callable[[Array, Array, float], Array]] = {
    "stripes": lambda u, v, f: _square_wave(f * u),
    "checker": lambda u, v, f: np.abs(_square_wave(f * u) - _square_wave(f * v)),
    "dots": lambda u, v, f: (
        np.hypot(np.mod(f * u, 1.0) - 0.5, np.mod(f * v, 1.0) - 0.5) < 0.3
    ).astype(np.float32),
    "spokes": lambda u, v, f: _square_wave(np.arctan2(v, u) * SPOKES / (2 * math.pi)),
    "waves": lambda u, v, f: _square_wave(f * u + 0.35 * np.sin(2.0 * math.pi * f * v)),
    "grid": lambda u, v, f: (
        np.minimum(np.abs(np.mod(f * u, 1.0) - 0.5), np.abs(np.mod(f * v, 1.0) - 0.5)) < 0.15
    ).astype(np.float32),
}


def render_background(look: SourceLook, height: int, width: int) -> Array:
    """Static ``H×W×3`` float32 background: two colours blended by smooth noise, plus grain."""
    rng = np.random.default_rng(look.background_seed)
    cells = look.background_cells
    coarse = rng.random((cells + 1, cells + 1)).astype(np.float32)
    rows = np.linspace(0.0, cells, height, dtype=np.float32)
    cols = np.linspace(0.0, cells, width, dtype=np.float32)
    blend = _bilinear(coarse, rows, cols)
    colors = np.asarray(look.background_colors, dtype=np.float32)
    image = colors[0] * (1.0 - blend[..., None]) + colors[1] * blend[..., None]
    image += look.grain * rng.standard_normal((height, width, 1)).astype(np.float32)
    return image


def _bilinear(grid: Array, rows: Array, cols: Array) -> Array:
    """Samples ``grid`` at fractional ``rows × cols`` positions (bilinear interpolation)."""
    r0 = np.minimum(rows.astype(np.int64), grid.shape[0] - 2)
    c0 = np.minimum(cols.astype(np.int64), grid.shape[1] - 2)
    fr = (rows - r0)[:, None]
    fc = (cols - c0)[None, :]
    top = grid[r0][:, c0] * (1 - fc) + grid[r0][:, c0 + 1] * fc
    bottom = grid[r0 + 1][:, c0] * (1 - fc) + grid[r0 + 1][:, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def draw_object(frame: Array, look: SourceLook, instance: Array) -> None:
    """Composites one object instance ``(x, y, angle, radius, opacity)`` onto ``frame`` in place."""
    x, y, angle, radius, opacity = (float(value) for value in instance)
    if opacity <= 0.0 or radius < 0.5:
        return
    height, width = frame.shape[:2]
    extent = radius * 1.05 + 1.0
    top, bottom = max(int(y - extent), 0), min(int(y + extent) + 2, height)
    left, right = max(int(x - extent), 0), min(int(x + extent) + 2, width)
    if top >= bottom or left >= right:
        return
    dy = np.arange(top, bottom, dtype=np.float32)[:, None] + 0.5 - y
    dx = np.arange(left, right, dtype=np.float32)[None, :] + 0.5 - x
    cos, sin = math.cos(angle), math.sin(angle)
    u = (cos * dx + sin * dy) / radius
    v = (-sin * dx + cos * dy) / radius
    coverage = np.clip(0.5 - SHAPE_DISTANCE[look.shape](u, v) * radius, 0.0, 1.0) * opacity
    pattern = TEXTURE_VALUE[look.texture](u, v, look.texture_frequency)
    colors = np.asarray(look.object_colors, dtype=np.float32)
    color = colors[0] * (1.0 - pattern[..., None]) + colors[1] * pattern[..., None]
    region = frame[top:bottom, left:right]
    region += coverage[..., None] * (color - region)


def camera_jitter(n_frames: int, rng: np.random.Generator) -> Array:
    """``T×2`` integer camera offsets ``(dx, dy)``: a lazy random walk within ±`JITTER_MARGIN`."""
    steps = rng.choice((-1, 0, 1), p=(0.15, 0.7, 0.15), size=(n_frames, 2))
    steps[0] = 0
    offsets = np.zeros((n_frames, 2), dtype=np.int64)
    for index in range(1, n_frames):
        offsets[index] = np.clip(offsets[index - 1] + steps[index], -JITTER_MARGIN, JITTER_MARGIN)
    return offsets


def render_frames(
    look: SourceLook,
    trajectory: Trajectory,
    *,
    height: int,
    width: int,
    rng: np.random.Generator,
) -> Array:
    """Renders a clip as ``T×H×W×3`` uint8 RGB frames.

    The camera jitters (the background crop and the object shift together), then Gaussian
    sensor noise of ``look.noise_sigma`` is added per frame and pixel.
    """
    margin = JITTER_MARGIN
    background = render_background(look, height + 2 * margin, width + 2 * margin)
    instances = trajectory.instances
    n_frames = instances.shape[0]
    offsets = camera_jitter(n_frames, rng)
    frames = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    for index in range(n_frames):
        dx, dy = offsets[index]
        frame = background[margin + dy : margin + dy + height, margin + dx : margin + dx + width]
        frame = frame.copy()
        for instance in instances[index]:
            shifted = instance.copy()
            shifted[0] -= dx
            shifted[1] -= dy
            draw_object(frame, look, shifted)
        frame += look.noise_sigma * rng.standard_normal(frame.shape, dtype=np.float32)
        np.clip(frame, 0.0, 255.0, out=frame)
        frames[index] = np.rint(frame).astype(np.uint8)
    return frames
