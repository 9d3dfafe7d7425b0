"""``vidssl data charades``: Charades videos → 24 fps JPEG frames + SlowFast frame lists.

``--videos DIR`` holds ``<id>.mp4`` (``Charades_v1_480``), ``--annotations DIR`` the official
``Charades_v1_{train,test}.csv``; ``--out DIR`` receives ``Charades_v1_rgb/<id>/<id>-NNNNNN.jpg``
and ``frame_lists/{train,val}.csv``, i.e. a ``data.root`` for ``vidssl downstream charades``.
Parallel, resumable (finished folders are kept, partial ones removed), with a progress bar;
unreadable videos are listed on screen and in ``OUT/failed_videos.txt`` (exit code 1).
"""

from __future__ import annotations

import argparse
import functools
import shutil
from pathlib import Path

from vidssl.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options to ``parser``."""
    parser.add_argument("--videos", required=True, metavar="DIR", help="folder of <id>.mp4 videos")
    parser.add_argument(
        "--annotations", required=True, metavar="DIR", help="folder with Charades_v1_*.csv"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset root to write")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality 1-100 (default 95)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")


def _job(job: tuple[Path, Path], quality: int) -> int:
    from vidssl.downstream.charades.prepare import extract_charades_frames

    return extract_charades_frames(job[0], job[1], quality=quality)


def run(args: argparse.Namespace) -> int:
    """Extracts what is missing, writes the frame lists; 0, or 1 when videos failed."""
    from vidssl.commands.data_frames import _remove_partial_folders, run_jobs
    from vidssl.downstream.charades.prepare import CSV_TO_LIST, FRAME_DIR, write_frame_lists

    videos_root, annotations, out = Path(args.videos), Path(args.annotations), Path(args.out)
    if not videos_root.is_dir():
        raise UserError(f"--videos {videos_root} is not a directory")
    missing = [name for name, _ in CSV_TO_LIST if not (annotations / name).is_file()]
    if missing:
        raise UserError(f"--annotations {annotations} lacks {', '.join(missing)}")
    if not 1 <= args.quality <= 100 or args.workers < 1:
        raise UserError("--quality must be 1-100 and --workers at least 1")
    videos = sorted(p for p in videos_root.iterdir() if p.suffix.lower() in (".mp4", ".avi"))
    if not videos:
        raise UserError(f"no .mp4/.avi videos in {videos_root}")
    frames_root = out / FRAME_DIR
    _remove_partial_folders({frames_root})
    jobs = [(v, frames_root / v.stem) for v in videos if not (frames_root / v.stem).is_dir()]
    failed, frames = [], 0
    work = functools.partial(_job, quality=args.quality)
    for (video, _), count, error in run_jobs(work, jobs, workers=args.workers, desc="charades"):
        if error is None:
            frames += int(count)
        else:
            failed.append((video.name, error))
    out.mkdir(parents=True, exist_ok=True)
    for name, _ in CSV_TO_LIST:
        if (annotations / name).resolve() != (out / name).resolve():
            shutil.copyfile(annotations / name, out / name)
    lists = write_frame_lists(out, frames_root, out)
    print(
        f"{len(videos)} videos: {len(jobs) - len(failed)} extracted ({frames} frames at 24 fps), "
        f"{len(videos) - len(jobs)} already done, {len(failed)} failed; frame lists: "
        + ", ".join(str(p) for p in lists)
    )
    failed_file = out / "failed_videos.txt"
    failed_file.unlink(missing_ok=True)
    if failed:
        failed_file.write_text("".join(f"{name}\t{error}\n" for name, error in failed))
        for name, error in failed:
            print(f"  failed: {name}: {error}")
        print(f"failed videos listed in {failed_file}; rerun the command to retry them")
        return 1
    return 0
