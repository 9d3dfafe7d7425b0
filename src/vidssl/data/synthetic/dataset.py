"""Synthetic action videos whose class is defined by motion, written in the exact UCF101 layout.

``make_synthetic_dataset(out, ...)`` writes::

    out/UCF-101/<Class>/v_<Class>_gXX_cYY.avi       H.264 in AVI, 25 fps, 4:3 frames
    out/ucfTrainTestlist/classInd.txt               "1 MoveUp" ... (1-based ids)
    out/ucfTrainTestlist/trainlist0{1,2,3}.txt      "MoveUp/v_MoveUp_g02_c01.avi 1"
    out/ucfTrainTestlist/testlist0{1,2,3}.txt       "MoveUp/v_MoveUp_g01_c01.avi"
    out/synth.json                                  parameters, classes, videos, corrupt files

What defines a class is the object's motion (`vidssl.data.synthetic.motion`). Appearance is
random per source group (colours, background, noise, jitter, start position, speed within the
class range) except for a partial cue that is not colour: with probability `CUE_PROBABILITY`
the object's shape and texture are its class's signature. So RGB appearance carries some class
signal and motion carries most of it (the gap two-stream co-training such as CoCLR closes).

Groups ``gXX`` are UCF101-style siblings: the clips ``cYY`` of a group share background,
object, texture, colours and motion parameters, and differ in time offset, a ±8% speed
variation, a small position shift, camera jitter and noise. Split ``k`` tests a window of about
30% of the groups (split 1: the first groups, like UCF101 split 1).

Every video appears atomically. Re-running with the same parameters into the same folder
resumes (existing videos are kept, they are bit-identical anyway); a folder made with other
parameters, or one that is not a synthetic dataset, is refused rather than overwritten.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from vidssl.data.synthetic.motion import MOTION_CLASSES
from vidssl.data.synthetic.plan import (
    CLIPS_PER_GROUP,
    CUE_PROBABILITY,
    FPS,
    SPLITS,
    SynthParams,
    VideoPlan,
    draw_source,
    plan_video,
    plan_videos,
    render_video,
)
from vidssl.errors import UserError
from vidssl.utils.io import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)

FORMAT = "vidssl-synth"
FORMAT_VERSION = 1
SUMMARY_FILE = "synth.json"
VIDEO_DIR = "UCF-101"
SPLIT_DIR = "ucfTrainTestlist"
CORRUPT_KINDS = ("truncated", "zero-byte", "garbage", "header-only")

__all__ = ["MOTION_CLASSES", "SynthParams", "VideoPlan", "make_synthetic_dataset"]


def default_workers() -> int:
    """Processes used when ``workers`` is not given: the usable CPU cores, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def make_synthetic_dataset(
    out: str | os.PathLike,
    *,
    classes: int = 10,
    videos_per_class: int = 12,
    frames: int = 64,
    size: int = 64,
    seed: int = 0,
    corrupt: int = 0,
    workers: int | None = None,
) -> dict[str, Any]:
    """Writes a synthetic motion-defined action dataset in the UCF101 layout.

    The defaults (10 classes × 12 videos, 86×64 frames, 40-88 frames per video) take seconds
    to write and keep the demo's flow extraction and tiny pre-trainings within minutes on 2
    cores.

    Args:
        out: dataset root; created if missing. It must be empty, or hold a synthetic dataset
            made with the same parameters (the run then resumes).
        classes: number of motion classes (the first ``classes`` of `MOTION_CLASSES`).
        videos_per_class: clips per class, in groups of up to 3 siblings.
        frames: mean clip length; lengths are uniform in ``[0.625, 1.375] × frames``.
        size: frame height (even, 32-1080); the width is ``4/3 × size`` rounded to even.
        seed: random seed; the same seed gives the same bytes, whatever ``workers`` is.
        corrupt: number of broken ``.avi`` files (truncated, zero-byte, garbage, header-only)
            added to train groups and listed in the split files.
        workers: parallel processes (default `default_workers`); 1 renders in this process.

    Returns:
        The content of ``out/synth.json`` (see `summary_dict`) plus ``root`` (the absolute
        path), ``written`` and ``reused`` (videos rendered now / kept from an earlier run) and
        ``seconds``.

    Raises:
        UserError: an invalid parameter, ``out`` is a file, or ``out`` holds something else.
    """
    started = time.perf_counter()
    params = SynthParams(classes, videos_per_class, frames, size, seed, corrupt)
    params.validate()
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise UserError(f"--workers {workers}: expected 1 or more")
    root = Path(out)
    _check_output_folder(root, params)

    plans = plan_videos(params)
    corrupt_files = corrupt_plans(params)
    summary = summary_dict(params, plans, corrupt_files)
    atomic_write_text(root / SUMMARY_FILE, json.dumps(dict(summary, complete=False), indent=1))
    for motion in params.motion_classes:
        (root / VIDEO_DIR / motion.name).mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)

    pending = [plan for plan in plans if not (root / VIDEO_DIR / plan.relative_path).exists()]
    run_parallel(_write_video_job, [(str(root), params, plan) for plan in pending], workers)
    for plan, kind in corrupt_files:
        write_corrupt_video(root / VIDEO_DIR / plan.relative_path, params, plan, kind)
    write_split_files(root / SPLIT_DIR, params, plans + [plan for plan, _ in corrupt_files])
    atomic_write_text(root / SUMMARY_FILE, json.dumps(summary, indent=1))

    seconds = time.perf_counter() - started
    logger.info(
        "wrote %d videos (%d reused, %d corrupt) of %d classes to %s in %.1f s",
        len(pending),
        len(plans) - len(pending),
        len(corrupt_files),
        params.classes,
        root,
        seconds,
    )
    return dict(
        summary,
        root=str(root.resolve()),
        written=len(pending),
        reused=len(plans) - len(pending),
        seconds=seconds,
    )


def _check_output_folder(root: Path, params: SynthParams) -> None:
    """Refuses a file, a foreign non-empty folder, or a dataset made with other parameters."""
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root} is a file; expected a new or empty folder")
    if not root.exists() or not any(root.iterdir()):
        return
    summary_path = root / SUMMARY_FILE
    if not summary_path.is_file():
        raise UserError(
            f"--out {root} is not empty and holds no {SUMMARY_FILE}; "
            "expected a new or empty folder (nothing was overwritten)"
        )
    try:
        previous = json.loads(summary_path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(
            f"{summary_path} is unreadable ({error}); delete it or the folder"
        ) from None
    if previous.get("format") != FORMAT or previous.get("params") != dataclasses.asdict(params):
        raise UserError(
            f"--out {root} holds a synthetic dataset made with other parameters "
            f"({previous.get('params')}); choose another folder or delete it"
        )


def _remove_stale_temporaries(root: Path) -> None:
    """Deletes ``.<name>.*.tmp`` files that a killed run's atomic writes left behind."""
    for pattern in (f"{VIDEO_DIR}/*/.*.tmp", f"{SPLIT_DIR}/.*.tmp", ".*.tmp"):
        for stale in root.glob(pattern):
            stale.unlink(missing_ok=True)


def _write_video_job(job: tuple[str, SynthParams, VideoPlan]) -> str:
    """Worker entry point: renders one planned video and writes it atomically."""
    from vidssl.data.sources.video_io import write_video

    root, params, plan = job
    path = Path(root) / VIDEO_DIR / plan.relative_path
    write_video(path, render_video(params, plan), fps=FPS, threads=1)
    return plan.relative_path


def run_parallel(function: Callable[[Any], Any], jobs: list[Any], workers: int) -> None:
    """Runs ``function`` on every job, in ``workers`` spawned processes, with a progress bar."""
    from tqdm import tqdm

    with tqdm(total=len(jobs), desc="synth", unit="video", disable=None) as progress:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                function(job)
                progress.update()
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            futures = {pool.submit(function, job) for job in jobs}
            try:
                while futures:
                    done, futures = wait(futures, return_when=FIRST_EXCEPTION)
                    for future in done:
                        future.result()  # re-raises a worker's exception here
                        progress.update()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise


def corrupt_plans(params: SynthParams) -> list[tuple[VideoPlan, str]]:
    """Slots and kinds of the broken videos: extra clips of each class's last (train) group.

    Broken file ``i`` goes to class ``i mod N`` as the next unused clip number of that class's
    last group, which split 1 always trains on; kinds cycle through `CORRUPT_KINDS`.
    """
    last_group = len(params.group_sizes)
    plans = []
    for index in range(params.corrupt):
        class_index = index % params.classes
        clip = params.group_sizes[-1] + 1 + index // params.classes
        plan = plan_video(params, class_index, last_group, clip)
        plans.append((plan, CORRUPT_KINDS[index % len(CORRUPT_KINDS)]))
    return plans


def write_corrupt_video(path: Path, params: SynthParams, plan: VideoPlan, kind: str) -> None:
    """Writes one deliberately broken ``.avi`` (deterministic bytes) that PyAV cannot decode.

    Kinds: ``zero-byte`` (empty file); ``garbage`` (random bytes, no container); ``truncated``
    (a real encoding cut inside its first frame: the header promises frames, decoding fails);
    ``header-only`` (a real encoding cut where the frame data begins: zero frames decode).
    """
    rng = np.random.default_rng([params.seed, plan.class_index, plan.group, plan.clip, 1])
    if kind == "zero-byte":
        data = b""
    elif kind == "garbage":
        data = rng.integers(0, 256, size=int(rng.integers(2_000, 20_000)), dtype=np.uint8).tobytes()
    elif kind in ("truncated", "header-only"):
        from vidssl.data.sources.video_io import write_video

        write_video(path, render_video(params, plan), fps=FPS, threads=1)
        encoded = path.read_bytes()
        frames_start = encoded.index(b"movi") + 4  # AVI 'movi' list: chunk id, size, data
        first_chunk = int.from_bytes(encoded[frames_start + 4 : frames_start + 8], "little")
        cut = frames_start if kind == "header-only" else frames_start + 8 + first_chunk // 2
        data = encoded[:cut]
    else:
        raise ValueError(f"unknown corrupt kind {kind!r}")
    atomic_write_bytes(path, data)


def write_split_files(folder: Path, params: SynthParams, plans: list[VideoPlan]) -> None:
    """Writes ``classInd.txt`` and train/test lists of splits 1-3 (UCF101 formats, CRLF-free)."""
    class_lines = [f"{index} {m.name}" for index, m in enumerate(params.motion_classes, start=1)]
    atomic_write_text(folder / "classInd.txt", "\n".join(class_lines) + "\n")
    for split in SPLITS:
        test_groups = set(params.test_groups(split))
        train = [p for p in plans if p.group not in test_groups]
        test = [p for p in plans if p.group in test_groups]
        train_text = "".join(f"{p.relative_path} {p.class_index + 1}\n" for p in train)
        test_text = "".join(f"{p.relative_path}\n" for p in test)
        atomic_write_text(folder / f"trainlist{split:02d}.txt", train_text)
        atomic_write_text(folder / f"testlist{split:02d}.txt", test_text)


def summary_dict(
    params: SynthParams, plans: list[VideoPlan], corrupt_files: list[tuple[VideoPlan, str]]
) -> dict[str, Any]:
    """The ``synth.json`` content: deterministic (no times, no absolute paths).

    Keys: ``format``, ``version``, ``complete``, ``params`` (the `SynthParams`), ``frame_size``
    (height, width), ``fps``, ``length_range``, ``clips_per_group``, ``cue_probability``,
    ``classes`` (id, name, motion, signature), ``splits`` (test groups and counts per split,
    corrupt files included in the counts), ``videos`` (path, class id, group, clip, frames,
    shape, texture, cue) and ``corrupt`` (path, class id, kind).
    """
    sources = {
        (class_index, group): draw_source(params, class_index, group).look
        for class_index in range(params.classes)
        for group in range(1, len(params.group_sizes) + 1)
    }
    all_plans = plans + [plan for plan, _ in corrupt_files]
    splits = {}
    for split in SPLITS:
        test_groups = params.test_groups(split)
        n_test = sum(plan.group in test_groups for plan in all_plans)
        splits[f"{split:02d}"] = {
            "test_groups": test_groups,
            "train": len(all_plans) - n_test,
            "test": n_test,
        }
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "complete": True,
        "params": dataclasses.asdict(params),
        "frame_size": {"height": params.height, "width": params.width},
        "fps": FPS,
        "length_range": list(params.length_range),
        "clips_per_group": CLIPS_PER_GROUP,
        "cue_probability": CUE_PROBABILITY,
        "classes": [
            {
                "id": index,
                "name": motion.name,
                "motion": motion.description,
                "signature": {"shape": motion.signature[0], "texture": motion.signature[1]},
            }
            for index, motion in enumerate(params.motion_classes, start=1)
        ],
        "splits": splits,
        "videos": [
            {
                "path": plan.relative_path,
                "class_id": plan.class_index + 1,
                "group": plan.group,
                "clip": plan.clip,
                "n_frames": plan.n_frames,
                "shape": sources[plan.class_index, plan.group].shape,
                "texture": sources[plan.class_index, plan.group].texture,
                "cue": sources[plan.class_index, plan.group].cue,
            }
            for plan in plans
        ],
        "corrupt": [
            {"path": plan.relative_path, "class_id": plan.class_index + 1, "kind": kind}
            for plan, kind in corrupt_files
        ],
    }
