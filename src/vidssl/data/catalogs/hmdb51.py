"""HMDB51 from its official split files (``testTrainMulti_7030_splits/``).

Official layout under ``root``::

    testTrainMulti_7030_splits/<class>_test_split<K>.txt   "<video>.avi <0|1|2>" per line
    hmdb51_org/<class>/<video>.avi                           (default media; also hmdb51/, videos/)

In split file K, tag 1 marks a training video, 2 a test video and 0 a video unused by that split.
Classes are the split-file prefixes, sorted by name (id 0 = ``brush_hair``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidssl.data.catalogs.files import annotation_lines, relative_video_path, strip_video_extension
from vidssl.data.catalogs.table import SplitEntries, register
from vidssl.errors import DataError

SPLIT_DIR = "testTrainMulti_7030_splits"
_TAGS = {"train": 1, "test": 2}


def _default_media(root: Path, split: str, entries: SplitEntries) -> list[Path]:
    return [root / "hmdb51_org", root / "hmdb51", root / "videos"]


def _video_of_line(text: str, split_file: Path, line: int) -> tuple[str, int]:
    fields = text.split()
    if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
        raise DataError(f"{split_file}:{line}: {text!r}; expected '<video>.avi <0|1|2>'")
    video = relative_video_path(fields[0], split_file, line)
    if "/" in video:
        raise DataError(f"{split_file}:{line}: {fields[0]!r}; expected a file name, not a path")
    return strip_video_extension(video), int(fields[1])


@register(
    "hmdb51",
    splits=("train", "test"),
    split_ids=(1, 2, 3),
    default_media=_default_media,
    layout=f"{SPLIT_DIR}/<class>_test_split<K>.txt (and hmdb51_org/ as media)",
)
def read_hmdb51(root: Path, split: str, split_id: int) -> SplitEntries:
    """Reads the 51 ``<class>_test_split<K>.txt`` files of split ``K``.

    Args:
        root: directory holding ``testTrainMulti_7030_splits/``.
        split: 'train' (tag 1) or 'test' (tag 2).
        split_id: 1, 2 or 3.
    """
    split_dir = root / SPLIT_DIR
    suffix = f"_test_split{split_id}.txt"
    files = sorted(split_dir.glob(f"*{suffix}")) if split_dir.is_dir() else []
    if not files:
        raise DataError(
            f"no {SPLIT_DIR}/<class>{suffix} under {root}; expected the official HMDB51 split files"
        )
    class_names = tuple(sorted(path.name[: -len(suffix)] for path in files))
    wanted = _TAGS[split]
    videos: list[str] = []
    labels: list[int] = []
    for label, class_name in enumerate(class_names):
        split_file = split_dir / f"{class_name}{suffix}"
        for line, text in annotation_lines(split_file):
            video, tag = _video_of_line(text, split_file, line)
            if tag == wanted:
                videos.append(f"{class_name}/{video}")
                labels.append(label)
    return SplitEntries(
        videos=np.array(videos, dtype=str),
        labels=np.array(labels, dtype=np.int64),
        class_names=class_names,
        annotation=split_dir / f"*{suffix}",
    )
