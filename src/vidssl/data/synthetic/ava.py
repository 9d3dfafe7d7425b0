"""Synthetic AVA: short videos of moving actors with motion-defined multi-label actions.

Written in the exact AVA v2.2 layout the reference reads (`vidssl.data.catalogs.ava`), so the
whole detection pipeline (readers, keyframes, dataset, head, evaluator) runs on CPU in minutes:

``OUT/frames/<vid>/<vid>_%06d.jpg`` (30 fps, frame 1 = second 900) and ``OUT/annotations/``:
``ava_{train,val}_v2.2.csv``, ``person_box_67091280_iou90/ava_detection_*.csv``, the label map,
``ava_val_excluded_timestamps_v2.2.csv`` and the frame lists ``train.csv`` / ``val.csv``.

Every actor is a textured rectangle of a random colour. Its actions are its motions, each an
independent component, so an actor can have several (multi-label):

* ``walk`` (AVA id 14): horizontal translation, bouncing off the borders;
* ``jump/leap`` (id 7): vertical hops ``|sin|``, 0.8 hops per second;
* ``bend/bow (at the waist)`` (id 1): the top edge dips and rises (height −35 % at 0.7 Hz; neither
  period is a whole second, so keyframe boxes move too);
* ``stand`` (id 12): none of the above.

GT boxes are the actors' exact boxes at each keyframe. Detection CSVs hold every GT box jittered
(Gaussian, σ = ``box_jitter`` of the frame) with its labels and a score in [0.9, 1) (about every
10th box gets a score below 0.9, which the 0.9 threshold removes), plus background boxes with an
empty action.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidssl.utils.io import atomic_directory, atomic_write_text
from vidssl.utils.jpeg import encode_jpeg

ACTIONS = {1: "bend/bow (at the waist)", 7: "jump/leap", 12: "stand", 14: "walk"}
"""The synthetic classes, with their AVA v2.2 ids and names."""
_MOTION_ACTIONS = (14, 7, 1)  # walk, jump, bend: one motion component each
# combinations in the order actors receive them: singles first so that few actors cover all
_COMBOS = ((14,), (7,), (1,), (12,), (14, 7), (14, 1), (7, 1), (14, 7, 1))

FPS = 30
CUT_START = 900
FIRST_KEYFRAME = 902


@dataclass(frozen=True)
class Actor:
    """One actor's look and motion (all sizes in pixels, speeds per frame)."""

    actions: tuple[int, ...]
    colour: np.ndarray
    x0: float
    y0: float
    width: float
    height: float
    speed: float
    phase: float

    def box(self, frame: int, frame_width: int, frame_height: int) -> np.ndarray:
        """``x1, y1, x2, y2`` (pixels, continuous) at ``frame``."""
        t = frame / FPS
        x = self.x0
        if 14 in self.actions:  # walk: bounce between the borders
            span = frame_width - self.width
            travel = (self.x0 + self.speed * frame) % (2 * span)
            x = travel if travel <= span else 2 * span - travel
        bottom = self.y0 + self.height
        if 7 in self.actions:  # jump: hop up to 25 % of the frame height
            bottom -= 0.25 * frame_height * abs(np.sin(0.8 * np.pi * t + self.phase))
        height = self.height
        if 1 in self.actions:  # bend: the top dips by up to 35 % of the height
            height *= 1 - 0.35 * (0.5 - 0.5 * np.cos(1.4 * np.pi * t + self.phase))
        return np.array([x, bottom - height, x + self.width, bottom])


def draw_actor(
    actions: tuple[int, ...], rng: np.random.Generator, frame_width: int, frame_height: int
) -> Actor:
    """A random actor (size, colour, start, speed, phase) performing ``actions``."""
    width = rng.uniform(0.15, 0.22) * frame_width
    height = rng.uniform(0.4, 0.55) * frame_height
    return Actor(
        actions=actions,
        colour=rng.integers(40, 256, size=3).astype(np.float32),
        x0=rng.uniform(0, frame_width - width),
        y0=rng.uniform(0.3 * frame_height, frame_height - height),
        width=width,
        height=height,
        speed=rng.uniform(1.0, 2.0) * rng.choice([-1.0, 1.0]),
        phase=rng.uniform(0, np.pi),
    )


def render_frame(actors: list[Actor], background: np.ndarray, frame: int) -> np.ndarray:
    """Frame ``frame``: pixel ``(r, c)`` of an actor is drawn iff ``x1 <= c < x2, y1 <= r < y2``."""
    height, width = background.shape[:2]
    image = background.copy()
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    for actor in actors:
        x1, y1, x2, y2 = actor.box(frame, width, height)
        inside = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
        stripes = ((rows - y1) // 4 % 2 == 0) & inside  # a texture that moves with the actor
        image[inside] = actor.colour
        image[stripes] = actor.colour * 0.6
    return image.clip(0, 255).astype(np.uint8)


def _fmt(values: np.ndarray) -> str:
    return ",".join(f"{v:.3f}" for v in values)


@dataclass(frozen=True)
class SyntheticAvaSummary:
    """What `make_synthetic_ava` wrote."""

    root: Path
    videos: dict[str, list[str]]
    keyframes_per_video: int
    gt_rows: dict[str, int]


def _video(
    name: str, actors: list[Actor], n_frames: int, size: tuple[int, int], root: Path,
    rng: np.random.Generator,
) -> None:  # fmt: skip
    height, width = size
    background = rng.integers(0, 60, size=(height, width, 3)).astype(np.float32)
    background += np.linspace(0, 40, width)[None, :, None]
    folder = root / "frames" / name
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) == n_frames:
        return  # already written (resumable)
    with atomic_directory(folder) as tmp:
        for frame in range(n_frames):
            image = render_frame(actors, background, frame)
            (tmp / f"{name}_{frame + 1:06d}.jpg").write_bytes(encode_jpeg(image, quality=90))


def make_synthetic_ava(
    out_dir: str | os.PathLike,
    train_videos: int = 4,
    val_videos: int = 2,
    keyframes: int = 5,
    actors_per_video: int = 2,
    size: tuple[int, int] = (96, 128),
    box_jitter: float = 0.02,
    negatives_per_keyframe: int = 1,
    seed: int = 0,
) -> SyntheticAvaSummary:
    """Writes a synthetic AVA v2.2 dataset (see the module docstring).

    Args:
        out_dir: output root (``frames/`` and ``annotations/`` below it).
        train_videos: number of train videos.
        val_videos: number of val videos.
        keyframes: annotated seconds per video (902, 903, ...).
        actors_per_video: actors per video.
        size: frame ``(height, width)``.
        box_jitter: standard deviation of the detection boxes' jitter (fraction of the frame).
        negatives_per_keyframe: background detection boxes (empty action) per keyframe.
        seed: random seed (the same seed writes the same files).

    Returns:
        A `SyntheticAvaSummary`.
    """
    root = Path(out_dir)
    annotations = root / "annotations"
    (annotations / "person_box_67091280_iou90").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    height, width = size
    n_frames = (keyframes + 3) * FPS
    seconds = range(FIRST_KEYFRAME, FIRST_KEYFRAME + keyframes)
    videos: dict[str, list[str]] = {}
    gt_rows: dict[str, int] = {}
    for split, count in (("train", train_videos), ("val", val_videos)):
        gt, det, frame_list = [], [], ["original_vido_id video_id frame_id path labels"]
        names = [f"synth_{split}_{index:03d}" for index in range(count)]
        for video_index, name in enumerate(names):
            first = video_index * actors_per_video
            actors = [
                draw_actor(_COMBOS[(first + a) % len(_COMBOS)], rng, width, height)
                for a in range(actors_per_video)
            ]
            _video(name, actors, n_frames, size, root, rng)
            frame_list += [
                f'{name} {video_index} {f} {name}/{name}_{f + 1:06d}.jpg ""'
                for f in range(n_frames)
            ]
            scale = np.array([width, height, width, height], dtype=np.float64)
            for second in seconds:
                frame = (second - CUT_START) * FPS
                for person, actor in enumerate(actors):
                    box = np.clip(actor.box(frame, width, height) / scale, 0.0, 1.0)
                    jittered = np.clip(box + rng.normal(0, box_jitter, size=4), 0.0, 1.0)
                    low = (len(det) // max(len(actor.actions), 1)) % 10 == 9
                    score = rng.uniform(0.5, 0.9) if low else rng.uniform(0.9, 1.0)
                    for action in actor.actions:
                        gt.append(f"{name},{second:04d},{_fmt(box)},{action},{person}")
                        det.append(f"{name},{second:04d},{_fmt(jittered)},{action},{score:.6f}")
                for _ in range(negatives_per_keyframe):
                    x1, y1 = rng.uniform(0, 0.7, size=2)
                    extent = rng.uniform([0.1, 0.2], [0.3, 0.3])
                    negative = np.clip([x1, y1, x1 + extent[0], y1 + extent[1]], 0.0, 1.0)
                    score = rng.uniform(0.9, 1.0)
                    det.append(f"{name},{second:04d},{_fmt(negative)},,{score:.6f}")
        videos[split] = names
        gt_rows[split] = len(gt)
        atomic_write_text(annotations / f"ava_{split}_v2.2.csv", "\n".join(gt) + "\n")
        detections = (
            "ava_detection_train_boxes_and_labels_include_negative_v2.2.csv"
            if split == "train"
            else "ava_detection_val_boxes_and_labels.csv"
        )
        detection_path = annotations / "person_box_67091280_iou90" / detections
        atomic_write_text(detection_path, "\n".join(det) + "\n")
        atomic_write_text(annotations / f"{split}.csv", "\n".join(frame_list) + "\n")
    labelmap = "".join(
        f'item {{\n  name: "{name}"\n  id: {index}\n}}\n' for index, name in sorted(ACTIONS.items())
    )
    atomic_write_text(annotations / "ava_action_list_v2.2_for_activitynet_2019.pbtxt", labelmap)
    excluded = f"{videos['val'][0]},{seconds[-1]:04d}\n" if videos["val"] else ""
    atomic_write_text(annotations / "ava_val_excluded_timestamps_v2.2.csv", excluded)
    return SyntheticAvaSummary(root, videos, keyframes, gt_rows)
