"""``vidssl data frames``: decode every video under a folder into a JPEG frame folder.

``VIDEOS/Class/v_X.avi`` becomes ``OUT/Class/v_X/image_00001.jpg ...`` (1-based numbering). Each
folder appears atomically, so the command can be killed and rerun: finished videos are skipped and
partial folders of the killed run are removed. Corrupt videos are skipped, counted and listed.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from vidssl.errors import CorruptVideoError, UserError

logger = logging.getLogger(__name__)

Item = TypeVar("Item")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``data frames`` options."""
    parser.add_argument("--videos", required=True, help="folder of videos (searched recursively)")
    parser.add_argument("--out", required=True, help="output root for the frame folders")
    parser.add_argument(
        "--short-side", type=int, default=None, help="resize so the short side is N"
    )
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality 1-100 (default 95)")
    parser.add_argument(
        "--naming",
        choices=("image", "frame"),
        default="image",
        help="image: image_00001.jpg (CoCLR), frame: frame000001.jpg (PCL) (default image)",
    )
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")


def _call_catching(function: Callable[[Item], object], item: Item) -> tuple[object, str | None]:
    try:
        return function(item), None
    except CorruptVideoError as error:
        return None, str(error)


def run_jobs(
    function: Callable[[Item], object],
    items: Sequence[Item],
    *,
    workers: int,
    desc: str,
    unit: str = "video",
) -> Iterator[tuple[Item, object, str | None]]:
    """Applies ``function`` to every item, in ``workers`` processes, with a progress bar.

    ``function`` must be picklable (a module-level function or a ``functools.partial`` of one).
    A `CorruptVideoError` does not stop the run: it is yielded as the item's error message.

    Yields:
        ``(item, result, error)`` in completion order; ``result`` is None when ``error`` is set.
    """
    from tqdm import tqdm

    call = functools.partial(_call_catching, function)
    with tqdm(total=len(items), desc=desc, unit=unit, disable=None) as progress:
        if workers <= 1 or len(items) <= 1:
            for item in items:
                yield (item, *call(item))
                progress.update()
            return
        import multiprocessing

        with multiprocessing.Pool(min(workers, len(items))) as pool:
            results = pool.imap_unordered(
                _indexed, [(call, i, item) for i, item in enumerate(items)]
            )
            for position, (result, error) in results:
                yield items[position], result, error
                progress.update()


def _indexed(job: tuple[Callable, int, object]) -> tuple[int, tuple[object, str | None]]:
    call, position, item = job
    return position, call(item)


def extract_frames(
    video: Path, out_dir: Path, *, naming: str, quality: int, short_side: int | None
) -> int:
    """Decodes ``video`` into JPEG files in ``out_dir`` (published atomically); returns the count.

    Raises:
        CorruptVideoError: the video cannot be decoded completely or has no frames.
    """
    from vidssl.data.sources import VideoFile
    from vidssl.data.sources.frame_files import frame_file_name
    from vidssl.utils.io import atomic_directory
    from vidssl.utils.jpeg import encode_jpeg

    with atomic_directory(out_dir) as tmp:
        count = 0
        for count, frame in enumerate(VideoFile(video, short_side=short_side).iter_frames(), 1):
            (tmp / frame_file_name(naming, count)).write_bytes(encode_jpeg(frame, quality))
        if count == 0:
            raise CorruptVideoError(f"{video}: no frames")
    return count


def _extract_job(job: tuple[Path, Path], **options: object) -> int:
    video, out_dir = job
    return extract_frames(video, out_dir, **options)


def _remove_partial_folders(parents: set[Path]) -> int:
    """Deletes ``.name.partial-*`` folders (see `atomic_directory`) directly inside ``parents``.

    Only the output folders' parents are listed, never the frame folders themselves, so this stays
    cheap on millions of frame files.
    """
    import shutil

    removed = 0
    for parent in parents:
        if not parent.is_dir():
            continue
        for entry in os.scandir(parent):
            if entry.name.startswith(".") and ".partial-" in entry.name and entry.is_dir():
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    return removed


def _validate(args: argparse.Namespace) -> tuple[Path, Path]:
    videos_root, out_root = Path(args.videos), Path(args.out)
    if not videos_root.is_dir():
        raise UserError(f"--videos {videos_root} is not a directory of videos")
    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality {args.quality} is out of range; expected 1-100")
    if args.short_side is not None and args.short_side < 1:
        raise UserError(f"--short-side {args.short_side} must be a positive number of pixels")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers} must be at least 1")
    return videos_root, out_root


def run(args: argparse.Namespace) -> int:
    """Extracts frames of every video not yet done; returns 0 (corrupt videos are only listed)."""
    from vidssl.data.sources import VIDEO_EXTENSIONS, find_videos

    videos_root, out_root = _validate(args)
    videos = find_videos(videos_root)
    if not videos:
        raise UserError(
            f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) under {videos_root}"
        )
    targets: dict[Path, Path] = {}
    for video in videos:
        out_dir = out_root / video.relative_to(videos_root).with_suffix("")
        if out_dir in targets:
            raise UserError(
                f"{targets[out_dir]} and {video} would share the frame folder {out_dir}"
            )
        targets[out_dir] = video
    removed = _remove_partial_folders({out_dir.parent for out_dir in targets})
    if removed:
        logger.info("removed %d partial frame folders left by an interrupted run", removed)
    jobs = [(video, out_dir) for out_dir, video in targets.items() if not out_dir.is_dir()]
    done_before = len(targets) - len(jobs)
    options = {"naming": args.naming, "quality": args.quality, "short_side": args.short_side}
    extracted, frames, corrupt = 0, 0, []
    work = functools.partial(_extract_job, **options)
    for _job, count, error in run_jobs(work, jobs, workers=args.workers, desc="frames"):
        if error is None:
            extracted, frames = extracted + 1, frames + int(count)
        else:
            corrupt.append(error)
    print(
        f"{len(targets)} videos: {extracted} extracted ({frames} frames), "
        f"{done_before} already done, {len(corrupt)} corrupt (skipped)"
    )
    for message in sorted(corrupt):
        print(f"  corrupt: {message}")
    return 0
