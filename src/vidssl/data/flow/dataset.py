"""Flow extraction for a whole dataset: parallel over videos, resumable, never half-written.

Input is either a root of RGB frame folders ``SRC/Class/video/image_%05d.jpg`` or a root of video
files ``SRC/Class/video.ext``; output is ``OUT/Class/video/flow_%05d.jpg`` (1-based, one JPEG per
frame pair, so ``n_flow = n_rgb − 1``), in the releases' layout (see `vidssl.data.flow.extract`).

A video's output folder is published atomically, so "the folder exists" means "the video is
done": a rerun skips finished videos and deletes the hidden ``.video.partial-*`` folders a killed
run left behind. An unreadable video is skipped, counted and listed in the summary (and retried by
the next run, since it has no output folder).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vidssl.data.flow.extract import (
    METHODS,
    FlowEstimator,
    import_cv2,
    iter_flow_images,
    set_cv2_threads,
)
from vidssl.data.sources.frame_files import FLOW_TEMPLATE, list_frames
from vidssl.errors import CorruptVideoError, DataError, UserError
from vidssl.utils.io import atomic_directory, remove_partials
from vidssl.utils.jpeg import decode_jpeg, encode_jpeg

logger = logging.getLogger(__name__)

SOURCE_KINDS = ("frames", "videos")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")
DEFAULT_QUALITY = 100
"""JPEG quality of flow images; the releases wrote quality 100 (the data contract needs ≥ 95)."""


@dataclass(frozen=True)
class FlowTask:
    """One video to process (picklable, sent to worker processes)."""

    video_id: str  # 'Class/video'
    source: Path  # frame folder or video file
    output: Path  # OUT/Class/video
    source_kind: str
    method: str
    short_side: int | None
    quality: int


@dataclass(frozen=True)
class FlowResult:
    """What one worker did with one `FlowTask`."""

    video_id: str
    flow_frames: int
    error: str | None = None


@dataclass
class FlowSummary:
    """Outcome of `extract_flow_dataset`.

    Attributes:
        done: videos processed by this run.
        skipped: videos whose output folder already existed (finished by an earlier run).
        failed: ``(video_id, reason)`` of every unreadable video, sorted by id.
        flow_frames: flow JPEGs written by this run.
        seconds: wall time of this run.
        partials_removed: stale ``.partial-*`` folders of killed runs that were deleted.
    """

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    flow_frames: int = 0
    seconds: float = 0.0
    partials_removed: int = 0

    @property
    def frames_per_second(self) -> float:
        """Flow frames written per second of wall time."""
        return self.flow_frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """One-line human summary."""
        return (
            f"flow: {self.done} videos done, {self.skipped} skipped (already done), "
            f"{len(self.failed)} failed; {self.flow_frames} flow frames in {self.seconds:.1f} s "
            f"({self.frames_per_second:.1f} frames/s)"
        )


def _visible_dirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_flow_inputs(src: Path, source_kind: str) -> list[tuple[str, Path]]:
    """Finds the videos below ``src`` as sorted ``(video_id, path)`` pairs.

    ``video_id`` is ``'Class/video'``: the frame folder's two last path parts, or the video file's
    class folder and stem.

    Raises:
        UserError: ``src`` is not a directory, the kind is unknown, or nothing is found.
    """
    if source_kind not in SOURCE_KINDS:
        raise UserError(f"flow source kind {source_kind!r} is unknown; expected {SOURCE_KINDS}")
    if not src.is_dir():
        raise UserError(f"flow input {src} is not a directory; expected a root of Class/ folders")
    inputs: list[tuple[str, Path]] = []
    for class_dir in _visible_dirs(src):
        if source_kind == "frames":
            inputs += [(f"{class_dir.name}/{d.name}", d) for d in _visible_dirs(class_dir)]
            continue
        files = sorted(
            p
            for p in class_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_EXTENSIONS
        )
        inputs += [(f"{class_dir.name}/{p.stem}", p) for p in files]
    if not inputs:
        expected = (
            "Class/video/ frame folders"
            if source_kind == "frames"
            else f"Class/video files ({', '.join(VIDEO_EXTENSIONS)})"
        )
        raise UserError(f"flow input {src} holds no videos; expected {expected}")
    return inputs


def read_folder_frames(directory: Path) -> Iterator[np.ndarray]:
    """Decodes the JPEG frames of one frame folder in order, as ``H×W×3`` uint8 RGB.

    Raises:
        CorruptVideoError: a frame cannot be read or decoded.
    """
    for path in list_frames(directory):
        try:
            yield decode_jpeg(path.read_bytes())
        except (OSError, ValueError) as error:
            raise CorruptVideoError(f"{path}: {error}") from error


def read_video_frames(path: Path) -> Iterator[np.ndarray]:
    """Decodes every frame of a video file in order (PyAV, one decoder thread), as RGB uint8.

    A full sequential decode: flow needs every frame, so no seeking. The container is closed
    even when the caller stops early.

    Raises:
        CorruptVideoError: the file cannot be opened, has no video stream, or fails to decode.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise CorruptVideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise CorruptVideoError(f"{path}: {error}") from error


def process_video(task: FlowTask) -> FlowResult:
    """Writes the flow JPEGs of one video into its output folder, atomically.

    Returns:
        The number of flow frames written, or the reason the video was skipped as unreadable
        (then no output folder exists).
    """
    frames = (
        read_folder_frames(task.source)
        if task.source_kind == "frames"
        else read_video_frames(task.source)
    )
    cv2_error = import_cv2().error
    written = 0
    try:
        with contextlib.closing(frames), atomic_directory(task.output) as staging:
            flow_images = iter_flow_images(frames, task.method, short_side=task.short_side)
            for written, image in enumerate(flow_images, start=1):
                jpeg = encode_jpeg(image, quality=task.quality)
                (staging / FLOW_TEMPLATE.format(written)).write_bytes(jpeg)
            if written == 0:
                raise CorruptVideoError(f"{task.source}: fewer than 2 frames, no flow")
    except CorruptVideoError as error:
        return FlowResult(task.video_id, 0, str(error))
    except (ValueError, cv2_error) as error:  # frames of mixed sizes, frames too small for flow
        return FlowResult(task.video_id, 0, f"{task.source}: {error}")
    return FlowResult(task.video_id, written)


def init_flow_worker() -> None:
    """Pool initializer: one OpenCV thread per worker process (processes give the parallelism)."""
    set_cv2_threads(1)


def _run_serial(tasks: list[FlowTask]) -> Iterator[FlowResult]:
    restore = set_cv2_threads(1)
    try:
        for task in tasks:
            yield process_video(task)
    finally:
        restore()


def _run_parallel(
    tasks: list[FlowTask],
    workers: int,
    work: Callable[[FlowTask], FlowResult] = process_video,
) -> Iterator[FlowResult]:
    """Runs ``work`` on every task in ``workers`` processes, at most ``2 · workers`` in flight.

    Unlike `multiprocessing.Pool`, which waits forever for the task of a worker that died, a
    dead worker (out of memory, a crash inside FFmpeg or OpenCV) ends the run with a `DataError`
    naming the videos in flight; finished videos are kept and a rerun resumes.
    """
    queue = iter(tasks)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=init_flow_worker) as pool:
        in_flight = {pool.submit(work, task): task for task in islice(queue, 2 * workers)}
        try:
            while in_flight:
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    result = future.result()  # raises while the task is still listed in flight
                    del in_flight[future]
                    yield result
                    next_task = next(queue, None)
                    if next_task is not None:
                        in_flight[pool.submit(work, next_task)] = next_task
        except BrokenProcessPool:
            videos = ", ".join(sorted(task.video_id for task in in_flight.values()))
            raise DataError(
                "a flow worker process died (out of memory or a crash in FFmpeg/OpenCV) while "
                f"processing {videos}; finished videos are kept, rerun to resume"
            ) from None
        finally:  # interrupted: do not start the queued tasks
            for future in in_flight:
                future.cancel()


def _run_tasks(tasks: list[FlowTask], workers: int, progress: bool) -> Iterator[FlowResult]:
    results = _run_serial(tasks) if workers == 1 else _run_parallel(tasks, workers)
    with tqdm(
        total=len(tasks), unit="video", desc="flow", disable=None if progress else True
    ) as bar:
        for result in results:
            yield result
            bar.update(1)


def _check_arguments(
    src: Path, out: Path, method: str, workers: int, short_side: int | None, quality: int
) -> None:
    if method not in METHODS:
        raise UserError(f"flow method {method!r} is unknown; expected one of {METHODS}")
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if short_side is not None and short_side < 8:
        raise UserError(f"--short-side must be >= 8 pixels, got {short_side}")
    if not 95 <= quality <= 100:
        raise UserError(f"flow JPEG quality must be 95..100 (data contract), got {quality}")
    if out.exists() and not out.is_dir():
        raise UserError(f"flow output {out} exists and is not a directory")
    if src.is_dir() and out.resolve().is_relative_to(src.resolve()):
        raise UserError(f"flow output {out} is inside the input folder {src}; choose another root")


def extract_flow_dataset(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    source_kind: str = "frames",
    method: str = "tvl1",
    workers: int = 1,
    short_side: int | None = None,
    quality: int = DEFAULT_QUALITY,
    progress: bool = True,
) -> FlowSummary:
    """Extracts flow JPEGs for every video below ``src`` into ``out``.

    Args:
        src: root of ``Class/video/`` frame folders or of ``Class/video.ext`` files.
        out: output root; receives ``Class/video/flow_%05d.jpg``.
        source_kind: ``"frames"`` or ``"videos"``.
        method: ``"tvl1"`` (the releases) or ``"farneback"`` (faster, less accurate).
        workers: parallel processes, each with one OpenCV thread.
        short_side: resize frames to this short side before flow (Kinetics practice: 256).
        quality: JPEG quality of the flow images (95..100).
        progress: show a tqdm bar (it hides itself when stderr is not a terminal).

    Returns:
        A `FlowSummary`; unreadable videos are listed in ``failed``, not raised.

    Raises:
        UserError: bad paths or arguments, or OpenCV missing.
    """
    started = time.perf_counter()
    src, out = Path(src), Path(out)
    _check_arguments(src, out, method, workers, short_side, quality)
    inputs = list_flow_inputs(src, source_kind)
    FlowEstimator(method)  # fail fast with a UserError if OpenCV / cv2.optflow is missing
    summary = FlowSummary(partials_removed=remove_partials(out) if out.is_dir() else 0)
    if summary.partials_removed:
        logger.info("removed %d unfinished folders of an earlier run", summary.partials_removed)
    tasks = []
    first_source: dict[str, Path] = {}
    for video_id, path in inputs:
        if video_id in first_source:  # e.g. Class/a.mp4 next to Class/a.mkv
            reason = f"{path}: same output folder as {first_source[video_id]}, not processed"
            summary.failed.append((video_id, reason))
            continue
        first_source[video_id] = path
        output = out / video_id
        if output.is_dir():
            summary.skipped += 1
            continue
        tasks.append(FlowTask(video_id, path, output, source_kind, method, short_side, quality))
    logger.info("flow: %d videos to process, %d already done", len(tasks), summary.skipped)
    for result in _run_tasks(tasks, min(workers, max(1, len(tasks))), progress):
        if result.error is None:
            summary.done += 1
            summary.flow_frames += result.flow_frames
        else:
            logger.warning("skipping unreadable video %s: %s", result.video_id, result.error)
            summary.failed.append((result.video_id, result.error))
    summary.failed.sort()
    summary.seconds = time.perf_counter() - started
    return summary
