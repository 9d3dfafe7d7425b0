"""Motion classes of the synthetic action dataset and the object trajectories they produce.

A class is a sum of motion *components* (translate, swing, orbit, spin, ...). Every class is
closed under horizontal mirroring: where a motion has a left/right or clockwise/anticlockwise
sense, that sense is drawn at random per source group. So the random horizontal flip used by
CoCLR, PCL and ViCC never turns a video into another class, whether or not the flow pipeline
negates ``u`` on a flip.

Magnitudes are relative to the frame height ``H`` (speeds in ``H`` per frame), so motion looks
the same at any ``--size``: at ``H = 64`` a ``Move*`` object travels 1.9–3.2 px per frame
(112: 3.4–5.6 px). Peak speeds stay below about 0.075 H per frame, about half the shortest
object-texture period (0.125 H; the longest is 0.31 H), so periodic textures do not alias into
a false motion (the wagon-wheel effect) that flow estimators would follow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Period ranges in frames (25 fps), one per periodic component kind.
PERIODS: dict[str, tuple[float, float]] = {
    "swing": (20.0, 32.0),
    "orbit": (26.0, 40.0),
    "wobble": (16.0, 26.0),
    "pulsate": (14.0, 24.0),
    "bounce": (16.0, 26.0),
}
ZOOM_RADII = (0.05, 0.6)  # smallest and largest zoom radius, in units of H
ZOOM_COPIES = 2  # nested copies of a zooming object, evenly spaced in log-scale
BASE_RADIUS = (0.15, 0.22)  # object radius in units of H (zoom classes excepted)
CLIP_MAGNITUDE_JITTER = 0.08  # sibling clips scale their group's magnitudes by 1 ± this


@dataclass(frozen=True)
class Component:
    """One additive part of a class's motion.

    Attributes:
        kind: ``translate``, ``swing``, ``orbit``, ``spin``, ``wobble``, ``zoom``, ``pulsate``,
            ``bounce`` or ``shake``.
        low: smallest magnitude (meaning per kind: translate speed in H/frame, swing amplitude
            in H, orbit radius in H, spin rate in rad/frame, wobble
            amplitude in rad, zoom rate in log-radius/frame, pulsate amplitude in log-radius,
            bounce height in H, shake standard deviation in H).
        high: largest magnitude.
        direction: unit ``(dx, dy)`` for ``translate`` (``dx`` gets a random sign per group);
            ``(1, 0)`` or ``(0, 1)`` selects the axis of ``swing``; ``(±1, 0)`` is the sense of
            ``zoom`` (+1 = in).
    """

    kind: str
    low: float
    high: float
    direction: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class MotionClass:
    """A class of the synthetic dataset: a name, its motion, and its appearance cue.

    Attributes:
        name: CamelCase class name, as in UCF101 (``MoveUp``).
        description: one line saying what moves and how.
        components: the motion, as a sum of components.
        signature: ``(shape, texture)`` that objects of this class use with the cue probability.
    """

    name: str
    description: str
    components: tuple[Component, ...]
    signature: tuple[str, str]


@dataclass(frozen=True)
class ComponentDraw:
    """A component with its magnitude, period, phase and sense drawn for one source group."""

    kind: str
    magnitude: float
    period: float
    phase: float
    sign: float
    direction: tuple[float, float]


SHAPES = ("disc", "square", "triangle", "diamond", "plus", "star", "hexagon", "ring")
TEXTURES = ("stripes", "checker", "dots", "spokes", "waves", "grid")

_FAST = (0.03, 0.05)
_SLOW = (0.01, 0.018)
_DIAGONAL = 1.0 / math.sqrt(2.0)


def _signature(index: int) -> tuple[str, str]:
    # (index % 8, index % 6) is a distinct pair for every index below lcm(8, 6) = 24.
    return SHAPES[index % len(SHAPES)], TEXTURES[index % len(TEXTURES)]


def _catalogue() -> tuple[MotionClass, ...]:
    entries: list[tuple[str, str, tuple[Component, ...]]] = [
        ("MoveUp", "object translates upwards", (Component("translate", *_FAST, (0.0, -1.0)),)),
        ("MoveDown", "object translates downwards", (Component("translate", *_FAST, (0.0, 1.0)),)),
        (
            "MoveSideways",
            "object translates left or right",
            (Component("translate", *_FAST, (1.0, 0.0)),),
        ),
        ("ZoomIn", "object grows (approaches)", (Component("zoom", 0.04, 0.07, (1.0, 0.0)),)),
        ("ZoomOut", "object shrinks (retreats)", (Component("zoom", 0.04, 0.07, (-1.0, 0.0)),)),
        ("Spin", "object rotates in place, either sense", (Component("spin", 0.1, 0.2),)),
        (
            "SwingHorizontal",
            "object oscillates left-right",
            (Component("swing", 0.15, 0.22, (1.0, 0.0)),),
        ),
        (
            "SwingVertical",
            "object oscillates up-down",
            (Component("swing", 0.15, 0.22, (0.0, 1.0)),),
        ),
        ("Orbit", "object circles a point, either sense", (Component("orbit", 0.18, 0.26),)),
        ("Pulsate", "object size oscillates", (Component("pulsate", 0.25, 0.4),)),
        ("Still", "object does not move (camera jitter only)", ()),
        (
            "RiseDiagonal",
            "object translates up-left or up-right",
            (Component("translate", *_FAST, (_DIAGONAL, -_DIAGONAL)),),
        ),
        (
            "FallDiagonal",
            "object translates down-left or down-right",
            (Component("translate", *_FAST, (_DIAGONAL, _DIAGONAL)),),
        ),
        ("Bounce", "object hops up and down on a floor", (Component("bounce", 0.2, 0.3),)),
        (
            "HopSideways",
            "object hops while travelling left or right",
            (Component("bounce", 0.15, 0.25), Component("translate", 0.02, 0.03, (1.0, 0.0))),
        ),
        ("Wobble", "object rocks back and forth in place", (Component("wobble", 0.35, 0.6),)),
        ("DriftUp", "object drifts slowly upwards", (Component("translate", *_SLOW, (0.0, -1.0)),)),
        (
            "DriftDown",
            "object drifts slowly downwards",
            (Component("translate", *_SLOW, (0.0, 1.0)),),
        ),
        (
            "ZigZagUp",
            "object rises while swinging left-right",
            (
                Component("translate", 0.02, 0.03, (0.0, -1.0)),
                Component("swing", 0.1, 0.16, (1.0, 0.0)),
            ),
        ),
        ("Shake", "object jitters randomly in place", (Component("shake", 0.02, 0.035),)),
    ]
    return tuple(
        MotionClass(name, description, components, _signature(index))
        for index, (name, description, components) in enumerate(entries)
    )


MOTION_CLASSES: tuple[MotionClass, ...] = _catalogue()
"""All implemented classes, in the order ``--classes N`` takes them (the first N)."""


def draw_components(motion: MotionClass, rng: np.random.Generator) -> tuple[ComponentDraw, ...]:
    """Draws the group-level parameters (magnitude, period, phase, sense) of every component."""
    draws = []
    for component in motion.components:
        low_period, high_period = PERIODS.get(component.kind, (1.0, 1.0))
        draws.append(
            ComponentDraw(
                kind=component.kind,
                magnitude=float(rng.uniform(component.low, component.high)),
                period=float(rng.uniform(low_period, high_period)),
                phase=float(rng.uniform(0.0, 2.0 * math.pi)),
                sign=float(rng.choice((-1.0, 1.0))),
                direction=component.direction,
            )
        )
    return tuple(draws)


@dataclass(frozen=True)
class Trajectory:
    """Per-frame object instances of one clip, in pixels of the frame.

    ``instances`` is ``T×K×5`` float: ``(x, y, angle, radius, opacity)`` for ``K`` copies of the
    object (``K = 2`` for zoom classes, whose copies are nested in log-scale; 1 otherwise),
    ordered largest radius first so that smaller copies are drawn on top.
    """

    instances: np.ndarray


def object_trajectory(
    draws: tuple[ComponentDraw, ...],
    *,
    n_frames: int,
    time_offset: float,
    magnitude_scale: float,
    anchor: tuple[float, float],
    base_radius: float,
    start_angle: float,
    height: int,
    width: int,
    rng: np.random.Generator,
) -> Trajectory:
    """Evaluates a class's motion over one clip.

    Args:
        draws: group-level component parameters (`draw_components`).
        n_frames: clip length ``T``.
        time_offset: frames elapsed in the source before the clip starts (siblings differ here).
        magnitude_scale: clip-level factor on every magnitude (small sibling variation).
        anchor: ``(x, y)`` position at source time 0, in pixels.
        base_radius: object radius in pixels (ignored by ``zoom``).
        start_angle: object orientation at source time 0, in radians.
        height: frame height ``H`` (magnitudes are relative to it).
        width: frame width ``W``.
        rng: clip-level generator (used by ``shake`` only).

    Returns:
        The clip's `Trajectory`. Positions wrap around the frame with a margin of one object
        radius, so a translating object leaves on one side and comes back on the other.
    """
    t = time_offset + np.arange(n_frames, dtype=np.float64)
    x = np.full(n_frames, anchor[0])
    y = np.full(n_frames, anchor[1])
    angle = np.full(n_frames, start_angle)
    log_radius = np.full(n_frames, math.log(base_radius))
    zoom: ComponentDraw | None = None
    for draw in draws:
        size = draw.magnitude * magnitude_scale
        wave = np.sin(2.0 * math.pi * t / draw.period + draw.phase)
        if draw.kind == "translate":
            x += draw.sign * draw.direction[0] * size * height * t
            y += draw.direction[1] * size * height * t
        elif draw.kind == "swing":
            x += draw.direction[0] * size * height * wave
            y += draw.direction[1] * size * height * wave
        elif draw.kind == "orbit":
            turn = draw.sign * 2.0 * math.pi * t / draw.period + draw.phase
            x += size * height * np.cos(turn)
            y += size * height * np.sin(turn)
        elif draw.kind == "spin":
            angle += draw.sign * size * t
        elif draw.kind == "wobble":
            angle += size * wave
        elif draw.kind == "pulsate":
            log_radius += size * wave
        elif draw.kind == "bounce":
            y -= size * height * np.abs(np.sin(math.pi * t / draw.period + draw.phase))
        elif draw.kind == "shake":
            x += size * height * rng.standard_normal(n_frames)
            y += size * height * rng.standard_normal(n_frames)
            angle += 0.15 * rng.standard_normal(n_frames)
        elif draw.kind == "zoom":
            zoom = ComponentDraw(
                draw.kind, size, draw.period, draw.phase, draw.direction[0], draw.direction
            )
        else:
            raise ValueError(f"unknown motion component {draw.kind!r}")
    if zoom is not None:
        return Trajectory(_zoom_instances(zoom, t, x, y, angle, height, width))
    radius = np.exp(log_radius)
    margin = float(radius.max())
    x = _wrap(x, width, margin)
    y = _wrap(y, height, margin)
    instances = np.stack([x, y, angle, radius, np.ones(n_frames)], axis=-1)
    return Trajectory(instances[:, None, :])


def _wrap(position: np.ndarray, extent: int, margin: float) -> np.ndarray:
    """Wraps positions into ``[-margin, extent + margin)``: objects exit fully, then re-enter."""
    period = extent + 2.0 * margin
    return np.mod(position + margin, period) - margin


def _zoom_instances(
    zoom: ComponentDraw,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    angle: np.ndarray,
    height: int,
    width: int,
) -> np.ndarray:
    """Nested copies whose log-radius runs as a sawtooth from the smallest to the largest radius.

    Each copy fades in over the first 15% of its cycle and out over the last 25%, so no object
    pops in or out; with two copies half a cycle apart one is always visible.
    """
    low, high = ZOOM_RADII
    log_span = math.log(high / low)
    copies = []
    for copy in range(ZOOM_COPIES):
        cycle = np.mod(
            zoom.sign * zoom.magnitude * t / log_span
            + zoom.phase / (2 * math.pi)
            + copy / ZOOM_COPIES,
            1.0,
        )
        radius = low * height * np.exp(cycle * log_span)
        opacity = np.clip(cycle / 0.15, 0.0, 1.0) * np.clip((1.0 - cycle) / 0.25, 0.0, 1.0)
        x_clamped = np.clip(x, 0.0, width)
        y_clamped = np.clip(y, 0.0, height)
        copies.append(np.stack([x_clamped, y_clamped, angle, radius, opacity], axis=-1))
    instances = np.stack(copies, axis=1)  # T×K×5
    order = np.argsort(-instances[:, :, 3], axis=1, kind="stable")
    return np.take_along_axis(instances, order[:, :, None], axis=1)
