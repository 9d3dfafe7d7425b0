"""Synthetic Charades: videos with several motion-defined actions over time intervals.

Each video has a static textured background and 1–3 actions; an action is one object (random
shape, texture and colours: appearance says nothing about the class) that appears for the
action's interval and moves with the motion of its class (`MOTION_CLASSES`: move up, zoom in,
orbit, ...). Intervals may overlap, so a frame can carry several labels, as in Charades.

Output under ``out`` (the official layout): ``Charades_v1_480/<id>.mp4`` (24 fps, H.264),
``Charades_v1_train.csv`` and ``Charades_v1_test.csv`` (official columns; ``actions`` =
``"c003 1.25 3.50;..."``, ``length`` in seconds) and ``synth_charades.json``. The SlowFast frame
lists are derived from the CSVs by the command (`vidssl data synth --task charades`).
Every random choice comes from a generator seeded by ``(seed, video index)``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vidssl.data.sources.video_io import write_video
from vidssl.data.synthetic.dataset import default_workers, run_parallel
from vidssl.data.synthetic.motion import MOTION_CLASSES, draw_components, object_trajectory
from vidssl.data.synthetic.render import draw_look, draw_object, render_background
from vidssl.errors import UserError
from vidssl.utils.io import atomic_write_text

FPS = 24
VIDEO_DIR = "Charades_v1_480"
CSV_COLUMNS = (
    "id", "subject", "scene", "quality", "relevance", "verified", "script", "objects",
    "descriptions", "actions", "length",
)  # fmt: skip


@dataclass(frozen=True)
class CharadesSynthParams:
    """What determines the synthetic set (``workers`` does not).

    Attributes:
        classes: Motion classes used (the first ``classes`` of `MOTION_CLASSES`).
        train_videos: Videos in ``Charades_v1_train.csv``.
        test_videos: Videos in ``Charades_v1_test.csv``.
        frames: Mean length; lengths are uniform in ``[0.75, 1.25] × frames``.
        size: Frame height (even); width is 4/3 of it, rounded to even.
        max_actions: Actions per video are uniform in ``[1, max_actions]``.
        seed: Random seed.
    """

    classes: int = 6
    train_videos: int = 24
    test_videos: int = 12
    frames: int = 72
    size: int = 48
    max_actions: int = 3
    seed: int = 0

    def validate(self) -> None:
        """Raises `UserError` for out-of-range values."""
        if not 1 <= self.classes <= len(MOTION_CLASSES):
            raise UserError(f"--classes must be in [1, {len(MOTION_CLASSES)}], got {self.classes}")
        if self.train_videos < 1 or self.test_videos < 1:
            raise UserError("--train-videos and --test-videos must be ≥ 1")
        if self.frames < 16 or self.size < 32 or self.size % 2:
            raise UserError("--frames must be ≥ 16 and --size an even number ≥ 32")

    @property
    def width(self) -> int:
        """Frame width (4:3, even)."""
        return 2 * round(self.size * 2 / 3)


@dataclass(frozen=True)
class ActionPlan:
    """One action: class, first frame, last frame (inclusive)."""

    label: int
    start: int
    end: int


def video_id(index: int) -> str:
    """Charades-like 5-character id of video ``index``: ``S0000``, ``S0001``, ..."""
    return f"S{index:04d}"


def plan_actions(params: CharadesSynthParams, index: int) -> tuple[int, list[ActionPlan]]:
    """Length and actions of video ``index`` (first draws of the video's generator)."""
    rng = np.random.default_rng([params.seed, index])
    n_frames = int(rng.integers(math.ceil(0.75 * params.frames), int(1.25 * params.frames) + 1))
    actions = []
    for _ in range(int(rng.integers(1, params.max_actions + 1))):
        duration = int(rng.integers(n_frames // 3, 2 * n_frames // 3 + 1))
        start = int(rng.integers(0, n_frames - duration + 1))
        actions.append(ActionPlan(int(rng.integers(params.classes)), start, start + duration - 1))
    return n_frames, actions


def render_charades_video(params: CharadesSynthParams, index: int) -> np.ndarray:
    """``T×H×W×3`` uint8 frames of video ``index``."""
    n_frames, actions = plan_actions(params, index)
    rng = np.random.default_rng([params.seed, index, 1])
    height, width = params.size, params.width
    scene = draw_look(rng, MOTION_CLASSES[0].signature, 0.0)
    frames = np.repeat(render_background(scene, height, width)[None], n_frames, axis=0)
    for action in actions:
        motion = MOTION_CLASSES[action.label]
        look = draw_look(rng, motion.signature, 0.0)
        length = action.end - action.start + 1
        trajectory = object_trajectory(
            draw_components(motion, rng), n_frames=length, time_offset=float(rng.uniform(0, 50)),
            magnitude_scale=1.0,
            anchor=(float(rng.uniform(0.3, 0.7)) * width, float(rng.uniform(0.3, 0.7)) * height),
            base_radius=look.base_radius * height, start_angle=float(rng.uniform(0, 2 * math.pi)),
            height=height, width=width, rng=rng,
        )  # fmt: skip
        for offset in range(length):
            for instance in trajectory.instances[offset]:
                draw_object(frames[action.start + offset], look, instance)
    frames += scene.noise_sigma * rng.standard_normal(frames.shape, dtype=np.float32)
    return np.rint(np.clip(frames, 0.0, 255.0)).astype(np.uint8)


def _write_video_job(job: tuple[str, CharadesSynthParams, int]) -> None:
    root, params, index = job
    path = Path(root) / VIDEO_DIR / f"{video_id(index)}.mp4"
    if not path.is_file():
        write_video(path, render_charades_video(params, index), fps=FPS, threads=1)


def _seconds(frame: int, rounding: Callable[[float], int]) -> float:
    """Frame time at 4 decimals, rounded outwards so that the frame stays inside the interval."""
    return rounding(frame / FPS * 10_000) / 10_000


def _csv_text(params: CharadesSynthParams, indices: range) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for index in indices:
        n_frames, actions = plan_actions(params, index)
        text = ";".join(
            f"c{a.label:03d} {_seconds(a.start, math.floor):.4f} {_seconds(a.end, math.ceil):.4f}"
            for a in actions
        )
        names = ",".join(MOTION_CLASSES[a.label].name for a in actions)
        writer.writerow(
            [video_id(index), "synth", "Synthetic", 7, 7, "Yes", names, "object", names, text,
             f"{n_frames / FPS:.4f}"]
        )  # fmt: skip
    return buffer.getvalue()


def make_synthetic_charades(
    out: str | Path, params: CharadesSynthParams, *, workers: int | None = None
) -> dict:
    """Writes the synthetic Charades set (videos + official CSVs); existing videos are reused.

    Returns:
        The summary also written to ``synth_charades.json``.
    """
    params.validate()
    root = Path(out)
    started = time.perf_counter()
    total = params.train_videos + params.test_videos
    existing = sum((root / VIDEO_DIR / f"{video_id(i)}.mp4").is_file() for i in range(total))
    jobs = [(str(root), params, index) for index in range(total)]
    run_parallel(_write_video_job, jobs, workers or default_workers())
    atomic_write_text(root / "Charades_v1_train.csv", _csv_text(params, range(params.train_videos)))
    atomic_write_text(
        root / "Charades_v1_test.csv", _csv_text(params, range(params.train_videos, total))
    )
    summary = {
        "root": str(root),
        "params": asdict(params),
        "classes": [m.name for m in MOTION_CLASSES[: params.classes]],
        "fps": FPS,
        "videos": total,
        "written": total - existing,
        "reused": existing,
        "seconds": round(time.perf_counter() - started, 2),
    }
    atomic_write_text(root / "synth_charades.json", json.dumps(summary, indent=2) + "\n")
    return summary
