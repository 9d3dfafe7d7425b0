"""CSV catalogs: CoCLR's split CSVs (``coclr_csv``) and a generic ``path,label`` list (``csv``).

``coclr_csv`` reads ``root/{train,test}_split%02d.csv`` (K400: ``{train,val}_split.csv``) whose rows
are ``/frame/root/Class/video/,n_frames`` (CoCLR ``process_data/src/write_csv.py``): the class is
the second-to-last path part, the video the last. Classes come from ``ClassInd.txt`` /
``classInd.txt`` in ``root``, else the sorted class names of the CSV. The default media is the
frame root the CSV paths point at.

``csv`` reads ``root/<split>.csv`` (or ``annotations=``) with rows ``path,label``: ``path`` relative
to the media (default ``root``), with or without a video extension; ``label`` a class name or a
0-based integer. An optional header row (``path,label``) is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vidssl.data.catalogs.files import (
    ClassLookup,
    csv_rows,
    first_existing,
    read_class_list,
    relative_video_path,
    strip_video_extension,
)
from vidssl.data.catalogs.table import SplitEntries, register
from vidssl.data.catalogs.ucf101 import source_groups
from vidssl.errors import DataError

_CLASS_FILES = ("ClassInd.txt", "classInd.txt")
_HEADER_LABELS = ("label", "labels", "class", "class_name", "class_id")


def _class_file(root: Path) -> Path | None:
    return first_existing(root / name for name in _CLASS_FILES)


def _coclr_media(root: Path, split: str, entries: SplitEntries) -> list[Path]:
    return [entries.media_hint] if entries.media_hint is not None else []


def _coclr_row(fields: list[str], csv_file: Path, line: int) -> tuple[str, str, str, int]:
    """``(frame_root, class, video, n_frames)`` of one CoCLR CSV row."""
    if len(fields) != 2 or not fields[1].isdigit():
        raise DataError(f"{csv_file}:{line}: {','.join(fields)!r}; expected 'path/,n_frames'")
    parts = fields[0].replace("\\", "/").rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        raise DataError(f"{csv_file}:{line}: path {fields[0]!r}; expected .../Class/video/")
    if ".." in parts[-2:]:
        raise DataError(f"{csv_file}:{line}: path {fields[0]!r} contains '..'")
    frame_root = "/".join(parts[:-2]) or "."
    return frame_root, parts[-2], parts[-1], int(fields[1])


@register(
    "coclr_csv",
    splits=("train", "test", "val"),
    split_ids=tuple(range(1, 100)),
    default_media=_coclr_media,
    layout="CoCLR split CSVs {train,test}_split01.csv and ClassInd.txt",
)
def read_coclr_csv(
    root: Path,
    split: str,
    split_id: int,
    *,
    video_source: str | os.PathLike | Mapping[str, int] | None = None,
) -> SplitEntries:
    """Reads a CoCLR split CSV; frame counts come from the CSV.

    Args:
        root: directory holding the CSVs (and ``ClassInd.txt``).
        split: 'train', 'test' or 'val'.
        split_id: the ``%02d`` number of the file; 1 also accepts ``<split>_split.csv`` (K400).
        video_source: CoCLR ``video_source.json`` for UCF101 source groups (see
            `vidssl.data.catalogs.ucf101.source_groups`; UCF101 names get groups without it too).
    """
    names = [f"{split}_split{split_id:02d}.csv"] + ([f"{split}_split.csv"] if split_id == 1 else [])
    csv_file = first_existing(root / name for name in names)
    if csv_file is None:
        raise DataError(f"{root / names[0]} not found; expected CoCLR's {names[0]} under {root}")
    rows = [(line, _coclr_row(fields, csv_file, line)) for line, fields in csv_rows(csv_file)]
    class_file = _class_file(root)
    if class_file is not None:
        classes = ClassLookup(read_class_list(class_file))
        listed_in = class_file.name
    else:
        classes = ClassLookup(sorted({row[1] for _, row in rows}))
        listed_in = "the CSV"
    labels = [classes.require(row[1], csv_file, line, listed_in) for line, row in rows]
    videos = np.array([f"{row[1]}/{row[2]}" for _, row in rows], dtype=str)
    label_array = np.array(labels, dtype=np.int64)
    frame_roots = {row[0] for _, row in rows}
    hint = None
    if len(frame_roots) == 1:
        frame_root = Path(frame_roots.pop())
        hint = frame_root if frame_root.is_absolute() else root / frame_root
    return SplitEntries(
        videos=videos,
        labels=label_array,
        class_names=classes.names,
        annotation=csv_file,
        groups=source_groups(videos, label_array, video_source),
        n_frames=np.array([row[3] for _, row in rows], dtype=np.int64),
        media_hint=hint,
    )


def _csv_classes(
    class_names: Sequence[str] | str | os.PathLike | None, root: Path
) -> tuple[str, ...] | None:
    if isinstance(class_names, (str, os.PathLike)):
        return read_class_list(Path(class_names))
    if class_names is not None:
        return tuple(class_names)
    class_file = _class_file(root)
    return read_class_list(class_file) if class_file is not None else None


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _integer_label(text: str, n_classes: int | None, csv_file: Path, line: int) -> int:
    label = int(text)
    if label < 0 or (n_classes is not None and label >= n_classes):
        expected = f"0..{n_classes - 1}" if n_classes is not None else ">= 0"
        raise DataError(f"{csv_file}:{line}: label {label} out of range; expected {expected}")
    return label


@register(
    "csv",
    splits=("train", "val", "test"),
    default_media=lambda root, split, entries: [root],
    layout="<split>.csv with 'path,label' rows",
)
def read_csv(
    root: Path,
    split: str,
    split_id: int,
    *,
    annotations: str | os.PathLike | None = None,
    class_names: Sequence[str] | str | os.PathLike | None = None,
) -> SplitEntries:
    """Reads a ``path,label`` CSV.

    Args:
        root: directory holding ``<split>.csv`` (and the media, by default).
        split: 'train', 'val' or 'test'.
        split_id: must be 1.
        annotations: an explicit CSV path instead of ``root/<split>.csv``.
        class_names: class list (names, or a class-list file); default ``root/classInd.txt`` if
            present, else the sorted label names (or ``'0'..'C-1'`` for integer labels).
    """
    csv_file = Path(annotations) if annotations is not None else root / f"{split}.csv"
    if not csv_file.is_file():
        raise DataError(f"{csv_file} not found; expected a CSV with 'path,label' rows")
    known = _csv_classes(class_names, root)
    lookup = ClassLookup(known) if known is not None else None
    rows: list[tuple[int, str, str]] = []
    for line, fields in csv_rows(csv_file):
        if len(fields) != 2:
            raise DataError(f"{csv_file}:{line}: {len(fields)} fields; expected 'path,label'")
        is_header = not rows and fields[1].lower() in _HEADER_LABELS
        if is_header and (lookup is None or lookup.get(fields[1]) is None):
            continue
        video = strip_video_extension(relative_video_path(fields[0], csv_file, line))
        rows.append((line, video, fields[1]))
    if lookup is None:
        integers = [_is_integer(label) for _, _, label in rows]
        if any(integers) and not all(integers):
            line = rows[integers.index(not integers[0])][0]
            raise DataError(f"{csv_file}:{line}: mixes class names and integer labels")
        if rows and all(integers):
            top = max(_integer_label(label, None, csv_file, line) for line, _, label in rows)
            known = tuple(str(i) for i in range(top + 1))
        else:
            known = tuple(sorted({label for _, _, label in rows}))
        lookup = ClassLookup(known)
    labels = []
    for line, _, label in rows:
        index = lookup.get(label)
        if index is None and _is_integer(label):
            index = _integer_label(label, len(lookup.names), csv_file, line)
        if index is None:
            index = lookup.require(label, csv_file, line, "the class list")
        labels.append(index)
    return SplitEntries(
        videos=np.array([video for _, video, _ in rows], dtype=str),
        labels=np.array(labels, dtype=np.int64),
        class_names=lookup.names,
        annotation=csv_file,
    )
