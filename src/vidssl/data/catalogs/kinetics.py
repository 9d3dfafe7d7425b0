"""Kinetics-400 from its official CSV annotations.

Official CSV (one per split; header required)::

    label,youtube_id,time_start,time_end,split
    abseiling,--07WQ2iBlw,1,11,train

A video is the file ``<label>/<youtube_id>_<start:06d>_<end:06d>.<mp4|mkv|webm>`` under the media
directory (default ``root/<split>``); label folders may use spaces or underscores. Downloads of
Kinetics are never complete: videos that are not there are left out, counted in
``VideoTable.missing`` and logged once. Classes are the sorted label names of the CSV unless
``class_names`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidssl.data.catalogs.files import ClassLookup, csv_rows, first_existing, read_class_list
from vidssl.data.catalogs.table import SplitEntries, register
from vidssl.errors import DataError

_COLUMNS = ("label", "youtube_id", "time_start", "time_end")
_SPLIT_ALIASES = {"train": ("train",), "val": ("val", "validate", "valid"), "test": ("test",)}


def _annotation_candidates(root: Path, split: str) -> list[Path]:
    names = []
    for alias in _SPLIT_ALIASES[split]:
        names += [f"{alias}.csv", f"kinetics_400_{alias}.csv", f"kinetics400_{alias}.csv"]
    return [folder / name for folder in (root, root / "annotations") for name in names]


def _default_media(root: Path, split: str, entries: SplitEntries) -> list[Path]:
    aliases = _SPLIT_ALIASES[split]
    return [root / alias for alias in aliases] + [root / "videos" / alias for alias in aliases]


def _second(text: str, csv_file: Path, line: int, column: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        raise DataError(f"{csv_file}:{line}: {column} {text!r} is not a number") from None


def _class_names(
    class_names: Sequence[str] | str | os.PathLike | None, labels: list[str]
) -> tuple[str, ...]:
    if class_names is None:
        return tuple(sorted(set(labels)))
    if isinstance(class_names, (str, os.PathLike)):
        return read_class_list(Path(class_names))
    return tuple(class_names)


@register(
    "kinetics400",
    splits=("train", "val", "test"),
    default_media=_default_media,
    layout="the Kinetics-400 CSVs (train.csv / val.csv / test.csv, or annotations/*.csv)",
)
def read_kinetics400(
    root: Path,
    split: str,
    split_id: int,
    *,
    annotations: str | os.PathLike | None = None,
    class_names: Sequence[str] | str | os.PathLike | None = None,
) -> SplitEntries:
    """Reads one Kinetics-400 CSV (``label,youtube_id,time_start,time_end[,split]``).

    Args:
        root: directory holding the CSVs (or ``annotations/`` with them).
        split: 'train', 'val' or 'test'; rows whose ``split`` column names another split are
            skipped, so a combined CSV works too.
        split_id: must be 1 (Kinetics has one split).
        annotations: an explicit CSV path instead of the default names.
        class_names: class list (names, or a file with one per line); default: sorted labels.
    """
    candidates = _annotation_candidates(root, split)
    csv_file = Path(annotations) if annotations is not None else first_existing(candidates)
    if csv_file is None or not csv_file.is_file():
        expected = csv_file if csv_file is not None else " or ".join(p.name for p in candidates[:3])
        raise DataError(f"Kinetics CSV {expected} not found under {root}; pass annotations=FILE")
    rows = csv_rows(csv_file)
    header_line, header = next(rows, (0, []))
    header = [name.lower() for name in header]
    if any(column not in header for column in _COLUMNS):
        raise DataError(
            f"{csv_file}:{max(header_line, 1)}: header {','.join(header)!r}; expected"
            f" {','.join(_COLUMNS)}[,split]"
        )
    column = {name: header.index(name) for name in (*_COLUMNS, "split") if name in header}
    labels: list[str] = []
    stems: list[str] = []
    lines: list[int] = []
    for line, fields in rows:
        if len(fields) != len(header):
            raise DataError(f"{csv_file}:{line}: {len(fields)} fields; expected {len(header)}")
        if "split" in column and fields[column["split"]] not in _SPLIT_ALIASES[split]:
            continue
        start = _second(fields[column["time_start"]], csv_file, line, "time_start")
        end = _second(fields[column["time_end"]], csv_file, line, "time_end")
        youtube_id = fields[column["youtube_id"]]
        label = fields[column["label"]]
        if not youtube_id or "/" in youtube_id or not label or "/" in label or ".." in label:
            raise DataError(f"{csv_file}:{line}: bad label {label!r} or youtube_id {youtube_id!r}")
        labels.append(label)
        stems.append(f"{youtube_id}_{start:06d}_{end:06d}")
        lines.append(line)
    names = _class_names(class_names, labels)
    lookup = ClassLookup(names)
    label_ids = [
        lookup.require(label, csv_file, line, "the class list")
        for label, line in zip(labels, lines)
    ]
    return SplitEntries(
        videos=np.array([f"{label}/{stem}" for label, stem in zip(labels, stems)], dtype=str),
        labels=np.array(label_ids, dtype=np.int64),
        class_names=names,
        annotation=csv_file,
    )
