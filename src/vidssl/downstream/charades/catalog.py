"""Charades annotations: SlowFast frame lists and the official ``Charades_v1_{train,test}.csv``.

Frame list (PySlowFast ``frame_lists/{train,val}.csv``, severe.md §7): a header
``original_vido_id video_id frame_id path labels`` then one whitespace-separated row per frame;
``labels`` is a quoted comma-separated list of 0-based class ids active at that frame, or ``""``.
Videos are grouped by the first column, in order of first appearance.

Official CSV: columns ``id, ..., actions, length``; ``actions`` is ``"c092 11.90 21.20;c147 0.00
12.60"`` (class, start s, end s). Frame ``i`` (0-based, at ``fps`` = 24) carries class ``c`` when
``start <= i / fps <= end``.

Labels: a training clip is labelled with the union of its frames' labels over the sampled span
``[first index, last index]``; a test video with the union over the whole video.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidssl.errors import DataError
from vidssl.utils.io import atomic_write_text

NUM_CLASSES = 157
FPS = 24
HEADER = "original_vido_id video_id frame_id path labels"


@dataclass(frozen=True)
class CharadesVideo:
    """One video: its id, frame files (relative paths, may be empty) and per-frame labels.

    Attributes:
        video_id: Charades id (``46GP8``).
        frame_labels: One tuple of 0-based class ids per frame.
        frame_paths: Relative frame paths from a frame list (empty when read from the CSV).
    """

    video_id: str
    frame_labels: tuple[tuple[int, ...], ...]
    frame_paths: tuple[str, ...] = ()

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return len(self.frame_labels)


def _parse_labels(text: str, where: str) -> tuple[int, ...]:
    text = text.strip().strip('"')
    if not text:
        return ()
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise DataError(f"{where}: bad label list {text!r}") from None


def read_frame_list(path: str | Path) -> list[CharadesVideo]:
    """Reads a SlowFast frame list into videos (in order of first appearance).

    Raises:
        DataError: Missing file, wrong header, or a row without 5 columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Charades frame list {path} does not exist")
    lines = path.read_text().splitlines()
    if not lines or lines[0].split() != HEADER.split():
        raise DataError(f"{path}: first line must be the header '{HEADER}'")
    labels: dict[str, list[tuple[int, ...]]] = {}
    paths: dict[str, list[str]] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = line.split()
        if len(row) != 5:
            raise DataError(f"{path}:{number}: expected 5 columns, got {len(row)}")
        video = row[0]
        labels.setdefault(video, []).append(_parse_labels(row[4], f"{path}:{number}"))
        paths.setdefault(video, []).append(row[3])
    return [CharadesVideo(v, tuple(labels[v]), tuple(paths[v])) for v in labels]


def parse_actions(text: str) -> list[tuple[int, float, float]]:
    """``"c092 11.90 21.20;c147 0.00 12.60"`` → ``[(92, 11.9, 21.2), (147, 0.0, 12.6)]``."""
    actions = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        parts = item.split()
        if len(parts) != 3 or not parts[0].startswith("c"):
            raise DataError(f"bad Charades action {item!r}; expected 'cNNN start end'")
        actions.append((int(parts[0][1:]), float(parts[1]), float(parts[2])))
    return actions


def frame_labels_from_actions(
    actions: Sequence[tuple[int, float, float]], n_frames: int, fps: float = FPS
) -> tuple[tuple[int, ...], ...]:
    """Per-frame label tuples: frame ``i`` has class ``c`` when ``start <= i/fps <= end``."""
    times = np.arange(n_frames) / fps
    active = [set() for _ in range(n_frames)]
    for cls, start, end in actions:
        for i in np.flatnonzero((times >= start) & (times <= end)):
            active[i].add(cls)
    return tuple(tuple(sorted(s)) for s in active)


def read_official_csv(
    path: str | Path, n_frames: dict[str, int] | None = None, fps: float = FPS
) -> list[CharadesVideo]:
    """Reads ``Charades_v1_{train,test}.csv`` into per-frame labels at ``fps``.

    Args:
        path: The CSV.
        n_frames: Frame count per video id (e.g. counted frame folders); missing ids use
            ``floor(length · fps)`` from the CSV's ``length`` column.
        fps: Frame rate the labels are sampled at.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Charades annotation file {path} does not exist")
    videos = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"id", "actions", "length"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            count = (n_frames or {}).get(row["id"])
            if count is None:
                count = int(np.floor(float(row["length"]) * fps))
            labels = frame_labels_from_actions(parse_actions(row["actions"]), count, fps)
            videos.append(CharadesVideo(row["id"], labels))
    return videos


def frame_path(video_id: str, frame: int) -> str:
    """Relative path of 0-based frame ``frame`` in ``Charades_v1_rgb``: ``ID/ID-000001.jpg``."""
    return f"{video_id}/{video_id}-{frame + 1:06d}.jpg"


def write_frame_list(path: str | Path, videos: Iterable[CharadesVideo]) -> None:
    """Writes videos as a SlowFast frame list (video index = order; default frame paths)."""
    lines = [HEADER]
    for index, video in enumerate(videos):
        for frame, labels in enumerate(video.frame_labels):
            rel = (
                video.frame_paths[frame] if video.frame_paths else frame_path(video.video_id, frame)
            )
            text = ",".join(str(c) for c in labels)
            lines.append(f'{video.video_id} {index} {frame} {rel} "{text}"')
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def _multi_hot(classes: Iterable[int], num_classes: int) -> np.ndarray:
    out = np.zeros(num_classes, dtype=np.float32)
    for c in classes:
        if not 0 <= c < num_classes:
            raise DataError(f"class id {c} is outside [0, {num_classes})")
        out[c] = 1.0
    return out


def span_label(
    frame_labels: Sequence[Sequence[int]], indices: Sequence[int], num_classes: int = NUM_CLASSES
) -> np.ndarray:
    """Multi-hot union of the frame labels over ``[indices[0], indices[-1]]`` (training clip)."""
    first, last = int(indices[0]), int(indices[-1])
    return _multi_hot({c for f in range(first, last + 1) for c in frame_labels[f]}, num_classes)


def video_label(
    frame_labels: Sequence[Sequence[int]], num_classes: int = NUM_CLASSES
) -> np.ndarray:
    """Multi-hot union of the labels of every frame (test video)."""
    return _multi_hot({c for labels in frame_labels for c in labels}, num_classes)
