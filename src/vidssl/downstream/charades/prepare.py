"""Charades data preparation: videos → 24 fps JPEG frames and SlowFast frame lists.

Replaces the reference's manual steps (download ``Charades_v1_rgb.tar`` or run ffmpeg at 24 fps,
then fetch PySlowFast's frame lists): each video becomes ``Charades_v1_rgb/<id>/<id>-NNNNNN.jpg``
(1-based, 24 fps: 24 fps frame ``i`` is the source frame nearest to time ``i/24``), published
atomically; the frame lists are built from the official CSVs with the counted frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vidssl.data.sources.video_file import VideoFile
from vidssl.downstream.charades.catalog import FPS, read_official_csv, write_frame_list
from vidssl.errors import CorruptVideoError
from vidssl.utils.io import atomic_directory
from vidssl.utils.jpeg import encode_jpeg

FRAME_DIR = "Charades_v1_rgb"
CSV_TO_LIST = (("Charades_v1_train.csv", "train.csv"), ("Charades_v1_test.csv", "val.csv"))


def resample_indices(n_source: int, source_fps: float, fps: float = FPS) -> list[int]:
    """Source frame of each output frame: ``min(round(i · source_fps / fps), n − 1)``.

    The output has ``max(1, floor(n_source · fps / source_fps))`` frames (``n_source`` when the
    rate is unknown or equal).
    """
    if n_source < 1:
        return []
    if source_fps <= 0 or abs(source_fps - fps) < 1e-6:
        return list(range(n_source))
    count = max(1, int(n_source * fps / source_fps))
    return [min(round(i * source_fps / fps), n_source - 1) for i in range(count)]


def extract_charades_frames(video: Path, out_dir: Path, *, quality: int = 95) -> int:
    """Writes the 24 fps frames of ``video`` as ``out_dir/<id>-NNNNNN.jpg``; returns the count.

    Raises:
        CorruptVideoError: The video cannot be decoded or has no frames.
    """
    source = VideoFile(video)
    wanted = resample_indices(len(source), source.frame_rate)
    if not wanted:
        raise CorruptVideoError(f"{video}: no frames")
    name = out_dir.name
    with atomic_directory(out_dir) as tmp:
        written, position = 0, 0
        for index, frame in enumerate(source.iter_frames()):
            data = None
            while position < len(wanted) and wanted[position] == index:
                data = data or encode_jpeg(frame, quality)
                (tmp / f"{name}-{position + 1:06d}.jpg").write_bytes(data)
                position, written = position + 1, written + 1
        if written != len(wanted):
            raise CorruptVideoError(f"{video}: decoded {written} of {len(wanted)} frames")
    return written


def write_frame_lists(annotations: Path, frames_root: Path, out: Path) -> list[Path]:
    """``out/frame_lists/{train,val}.csv`` from the official CSVs and the extracted frames.

    Videos without a frame folder are left out (they are listed as failed by the caller).
    """
    written = []
    counts = {
        folder.name: sum(1 for _ in folder.glob(f"{folder.name}-*.jpg"))
        for folder in _folders(frames_root)
    }
    for csv_name, list_name in CSV_TO_LIST:
        videos = [
            v for v in read_official_csv(annotations / csv_name, counts) if v.video_id in counts
        ]
        path = out / "frame_lists" / list_name
        write_frame_list(path, videos)
        written.append(path)
    return written


def _folders(root: Path) -> Iterable[Path]:
    return (
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if root.is_dir()
        else ()
    )
