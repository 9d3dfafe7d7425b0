"""Parameters, layout and deterministic plan of the synthetic action dataset.

Every random choice is drawn from a generator seeded by ``(seed, class, group[, clip])``, so a
video depends only on the seed and its own coordinates: not on the number of workers, not on
the order videos are written, and not on ``--classes`` (a 5-class set is a subset of a 10-class
set with the same seed, videos per class and frame settings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vidssl.data.synthetic.motion import (
    CLIP_MAGNITUDE_JITTER,
    MOTION_CLASSES,
    ComponentDraw,
    MotionClass,
    draw_components,
    object_trajectory,
)
from vidssl.data.synthetic.render import SourceLook, draw_look, render_frames
from vidssl.errors import UserError

FPS = 25
CLIPS_PER_GROUP = 3  # UCF101 has 4-7 clips per group; 3 keeps small sets split into several groups
TEST_GROUP_FRACTION = 0.3  # UCF101 split 1 tests groups 1-7 of 25 (28%)
CUE_PROBABILITY = 0.65  # chance that a group's object uses its class's (shape, texture) signature
LENGTH_RANGE = (0.625, 1.375)  # clip lengths are uniform in these multiples of the mean length
MAX_TIME_OFFSET = 200.0  # sibling clips start at a random time in [0, this) frames of the source
SPLITS = (1, 2, 3)
MIN_SIZE, MAX_SIZE = 32, 1080
MIN_FRAMES, MAX_FRAMES = 8, 10_000


@dataclass(frozen=True)
class SynthParams:
    """Everything that determines the dataset's content (``workers`` does not).

    Attributes:
        classes: number of motion classes, the first ``classes`` of `MOTION_CLASSES`.
        videos_per_class: clips per class, cut into groups of `CLIPS_PER_GROUP` siblings.
        frames: mean clip length; lengths are uniform in ``LENGTH_RANGE × frames``
            (64 → 40..88 frames).
        size: frame height in pixels (even); the width is ``4/3 × size`` rounded to an even
            number, the UCF101 aspect ratio (64 → 86×64).
        seed: random seed.
        corrupt: number of deliberately broken ``.avi`` files added to train groups.
    """

    classes: int = 10
    videos_per_class: int = 12
    frames: int = 64
    size: int = 64
    seed: int = 0
    corrupt: int = 0

    def validate(self) -> None:
        """Raises `UserError` (one line) for a value that cannot make a dataset."""
        if not 1 <= self.classes <= len(MOTION_CLASSES):
            raise UserError(
                f"--classes {self.classes}: expected 1 to {len(MOTION_CLASSES)} "
                "(the number of implemented motion classes)"
            )
        if self.videos_per_class < 2:
            raise UserError(
                f"--videos-per-class {self.videos_per_class}: expected at least 2 "
                "(one train and one test group)"
            )
        if not MIN_FRAMES <= self.frames <= MAX_FRAMES:
            raise UserError(f"--frames {self.frames}: expected {MIN_FRAMES} to {MAX_FRAMES}")
        if not MIN_SIZE <= self.size <= MAX_SIZE or self.size % 2:
            raise UserError(
                f"--size {self.size}: expected an even frame height from {MIN_SIZE} to {MAX_SIZE}"
            )
        if self.corrupt < 0:
            raise UserError(f"--corrupt {self.corrupt}: expected 0 or more")

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return self.size

    @property
    def width(self) -> int:
        """Frame width in pixels: 4:3 like UCF101's 320×240, rounded to an even number."""
        return 2 * round(self.size * 4 / 3 / 2)

    @property
    def length_range(self) -> tuple[int, int]:
        """Smallest and largest clip length (inclusive)."""
        return round(LENGTH_RANGE[0] * self.frames), round(LENGTH_RANGE[1] * self.frames)

    @property
    def motion_classes(self) -> tuple[MotionClass, ...]:
        """The classes of this dataset, in class-id order."""
        return MOTION_CLASSES[: self.classes]

    @property
    def group_sizes(self) -> list[int]:
        """Clips per group (group ``g`` has ``group_sizes[g - 1]`` clips); at least 2 groups."""
        n_groups = max(2, math.ceil(self.videos_per_class / CLIPS_PER_GROUP))
        base, extra = divmod(self.videos_per_class, n_groups)
        return [base + (1 if index < extra else 0) for index in range(n_groups)]

    def test_groups(self, split: int) -> list[int]:
        """1-based test groups of ``split`` (1-3): consecutive windows, like UCF101's splits.

        Split 1 tests the first ``round(0.3 × groups)`` groups (at least 1, leaving at least one
        train group); splits 2 and 3 test the next windows, wrapping around when groups run out.
        """
        n_groups = len(self.group_sizes)
        n_test = min(max(1, round(TEST_GROUP_FRACTION * n_groups)), n_groups - 1)
        start = (split - 1) * n_test
        return sorted({(start + index) % n_groups + 1 for index in range(n_test)})


@dataclass(frozen=True)
class VideoPlan:
    """One video of the dataset: its class, group, clip number and length."""

    class_index: int  # 0-based; class id in classInd.txt is class_index + 1
    class_name: str
    group: int  # 1-based, gXX
    clip: int  # 1-based, cYY
    n_frames: int

    @property
    def stem(self) -> str:
        """UCF101 video name without extension, ``v_<Class>_gXX_cYY``."""
        return f"v_{self.class_name}_g{self.group:02d}_c{self.clip:02d}"

    @property
    def relative_path(self) -> str:
        """Path below ``UCF-101/`` and in the split files: ``<Class>/v_<Class>_gXX_cYY.avi``."""
        return f"{self.class_name}/{self.stem}.avi"


@dataclass(frozen=True)
class Source:
    """A group's shared content: appearance, motion parameters, anchor and orientation."""

    look: SourceLook
    draws: tuple[ComponentDraw, ...]
    anchor: tuple[float, float]  # fractions of (W, H)
    start_angle: float


def draw_source(params: SynthParams, class_index: int, group: int) -> Source:
    """Draws the appearance and motion parameters that every clip of one group shares."""
    motion = MOTION_CLASSES[class_index]
    rng = np.random.default_rng([params.seed, class_index, group])
    look = draw_look(rng, motion.signature, CUE_PROBABILITY)
    draws = draw_components(motion, rng)
    # A hopping object stands on a floor in the lower part of the frame.
    low_y, high_y = (0.55, 0.8) if any(d.kind == "bounce" for d in draws) else (0.3, 0.7)
    anchor = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(low_y, high_y)))
    return Source(look, draws, anchor, float(rng.uniform(0.0, 2.0 * math.pi)))


def _clip_rng(params: SynthParams, class_index: int, group: int, clip: int) -> np.random.Generator:
    return np.random.default_rng([params.seed, class_index, group, clip])


def _draw_length(params: SynthParams, rng: np.random.Generator) -> int:
    low, high = params.length_range
    return int(rng.integers(low, high + 1))


def plan_video(params: SynthParams, class_index: int, group: int, clip: int) -> VideoPlan:
    """The plan of one video; its length is the first draw of the clip's generator."""
    n_frames = _draw_length(params, _clip_rng(params, class_index, group, clip))
    return VideoPlan(class_index, MOTION_CLASSES[class_index].name, group, clip, n_frames)


def plan_videos(params: SynthParams) -> list[VideoPlan]:
    """All (non-corrupt) videos, class by class, group by group, clip by clip."""
    return [
        plan_video(params, class_index, group, clip)
        for class_index in range(params.classes)
        for group, n_clips in enumerate(params.group_sizes, start=1)
        for clip in range(1, n_clips + 1)
    ]


def render_video(params: SynthParams, plan: VideoPlan) -> np.ndarray:
    """Renders the frames of a planned video, ``T×H×W×3`` uint8 (deterministic for the seed).

    Sibling clips share the group's `Source`; each clip has its own time offset in the source,
    a ±8% magnitude variation, a small anchor shift, camera jitter and sensor noise.
    """
    source = draw_source(params, plan.class_index, plan.group)
    rng = _clip_rng(params, plan.class_index, plan.group, plan.clip)
    n_frames = _draw_length(params, rng)
    time_offset = float(rng.uniform(0.0, MAX_TIME_OFFSET))
    magnitude_scale = float(rng.uniform(1 - CLIP_MAGNITUDE_JITTER, 1 + CLIP_MAGNITUDE_JITTER))
    shift = rng.normal(0.0, 0.03, size=2)
    height, width = params.height, params.width
    trajectory = object_trajectory(
        source.draws,
        n_frames=n_frames,
        time_offset=time_offset,
        magnitude_scale=magnitude_scale,
        anchor=((source.anchor[0] + shift[0]) * width, (source.anchor[1] + shift[1]) * height),
        base_radius=source.look.base_radius * height,
        start_angle=source.start_angle,
        height=height,
        width=width,
        rng=rng,
    )
    return render_frames(source.look, trajectory, height=height, width=width, rng=rng)
