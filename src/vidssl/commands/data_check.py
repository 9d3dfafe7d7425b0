"""``vidssl data check``: decode every item of a video store and list the bad ones.

PATH may be one video file, a folder of videos (searched recursively), a frame root (every leaf
folder is one video), one frame folder, or a CoCLR LMDB (``.lmdb`` file or LMDB directory). Each
item is decoded completely; an item is bad when it is unreadable, empty, or shorter than
``--min-frames``. Exit status 1 when any item is bad, 0 otherwise.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from vidssl.errors import UserError

CHUNK = 64
"""Frames decoded per read when checking frame folders and LMDB records."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``data check`` options."""
    parser.add_argument("path", help="video file, video folder, frame root/folder, or .lmdb")
    parser.add_argument(
        "--min-frames", type=int, default=1, help="flag items with fewer frames (default 1)"
    )
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")


@dataclass(frozen=True)
class CheckItem:
    """One video to check.

    Attributes:
        kind: 'video' (encoded file), 'frames' (frame folder) or 'lmdb' (record of an LMDB).
        path: the file, folder or LMDB.
        key: the 'Class/video' name of an LMDB record ('' otherwise).
    """

    kind: str
    path: Path
    key: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.key}" if self.key else str(self.path)


def count_decodable_frames(item: CheckItem) -> int:
    """Decodes every frame of ``item``; returns how many there are.

    Raises:
        CorruptVideoError: some frame cannot be decoded (or the file is truncated).
    """
    from vidssl.data.sources import FrameFolder, LmdbVideo, VideoFile

    if item.kind == "video":
        return sum(1 for _ in VideoFile(item.path).iter_frames())
    source = FrameFolder(item.path) if item.kind == "frames" else LmdbVideo(item.path, item.key)
    n_frames = len(source)
    for start in range(0, n_frames, CHUNK):
        source.read(range(start, min(start + CHUNK, n_frames)))
    return n_frames


def _is_lmdb(path: Path) -> bool:
    if path.is_dir():
        return (path / "data.mdb").is_file()
    return path.suffix.lower() in {".lmdb", ".mdb"}


def collect_items(path: Path) -> list[CheckItem]:
    """The items under ``path`` (see the module docstring for what PATH may be).

    Raises:
        UserError: ``path`` does not exist, is not a readable LMDB, or holds nothing to check.
    """
    from vidssl.data.sources import find_videos
    from vidssl.data.sources.frame_files import count_frames, find_frame_folders
    from vidssl.data.sources.lmdb_store import LmdbError, read_index

    if not path.exists():
        raise UserError(
            f"{path} does not exist; expected a video, a folder of videos or frames, or an LMDB"
        )
    if _is_lmdb(path):
        try:
            order = read_index(path).order
        except (LmdbError, KeyError) as error:
            raise UserError(f"{path} is not a readable CoCLR LMDB ({error})") from error
        return [CheckItem("lmdb", path, str(name)) for name in order]
    if path.is_file():
        return [CheckItem("video", path)]
    videos = find_videos(path)
    if videos:
        return [CheckItem("video", video) for video in videos]
    if count_frames(path):
        return [CheckItem("frames", path)]
    folders = find_frame_folders(path)
    if not folders:
        raise UserError(f"{path} holds no videos, frame folders or LMDB to check")
    return [CheckItem("frames", folder) for folder in folders]


def run(args: argparse.Namespace) -> int:
    """Checks every item; prints one line per bad item and a summary; 1 if any is bad."""
    from vidssl.commands.data_frames import run_jobs

    if args.min_frames < 1:
        raise UserError(f"--min-frames {args.min_frames} must be at least 1")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers} must be at least 1")
    items = collect_items(Path(args.path))
    problems = {"unreadable": 0, "empty": 0, "too short": 0}
    bad_lines = []
    for item, n_frames, error in run_jobs(
        count_decodable_frames, items, workers=args.workers, desc="check"
    ):
        if error is not None:
            problem, detail = "unreadable", error
        elif n_frames == 0:
            problem, detail = "empty", "0 frames"
        elif n_frames < args.min_frames:
            problem, detail = "too short", f"{n_frames} < {args.min_frames} frames"
        else:
            continue
        problems[problem] += 1
        bad_lines.append(f"{item}: {problem} ({detail})")
    for line in sorted(bad_lines):
        print(line)
    n_bad = len(bad_lines)
    details = ", ".join(f"{count} {name}" for name, count in problems.items())
    print(f"checked {len(items)} {items[0].kind} items: {n_bad} bad ({details})")
    return 1 if n_bad else 0
