"""AVA v2.2 annotation files: label map, box CSVs, exclusions and frame lists.

The official formats (all without a header except the frame lists):

* GT ``ava_{train,val}_v2.2.csv``: ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id``; boxes
  normalised to [0, 1], ``action_id`` 1-based, one row per (box, action).
* Detections (``person_box_67091280_iou90/ava_detection_*.csv``, or a model's output): the same
  columns with column 8 a score; an empty ``action_id`` marks a negative (background) box.
* ``ava_val_excluded_timestamps_v2.2.csv``: ``video_id,timestamp`` rows ignored by evaluation.
* Label map ``.pbtxt``: ``item { name: "..." id: N }`` blocks (``label_id:`` also accepted).
* Frame lists ``train.csv``/``val.csv``: a header, then whitespace-separated
  ``original_video_id video_id frame_id path labels``.

Readers return numpy arrays; every malformed line is a `DataError` starting with ``FILE:LINE:``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidssl.data.catalogs.files import annotation_lines, csv_rows, require_file
from vidssl.errors import DataError

NEGATIVE_ACTION = -1
"""The action id of a detection row whose action column is empty (a background box)."""

_NAME = re.compile(r'^name:\s*"(.*)"\s*$')
_ID = re.compile(r"^(?:label_)?id:\s*(-?\d+)\s*$")


def image_key(video: str, second: int) -> str:
    """The evaluator's key of one keyframe: ``"<video>,<second as %04d>"``."""
    return f"{video},{int(second):04d}"


@dataclass(frozen=True)
class LabelMap:
    """The classes of a label map, in file order.

    Attributes:
        ids: class ids (int64, as written, 1-based for AVA).
        names: the class names, aligned with ``ids``.
    """

    ids: np.ndarray
    names: tuple[str, ...]

    def name_of(self) -> dict[int, str]:
        """``{class_id: name}``."""
        return {int(i): n for i, n in zip(self.ids, self.names, strict=True)}


def read_labelmap(path: str | os.PathLike) -> LabelMap:
    """Reads an AVA/ActivityNet ``.pbtxt`` label map (``id:`` or ``label_id:`` lines).

    Like the reference parser, a class is recorded at each id line with the most recent ``name:``;
    indentation is not required. Raises `DataError` for a missing file, a repeated id or no class.
    """
    path = require_file(Path(path), "an AVA label map (.pbtxt)")
    ids: list[int] = []
    names: list[str] = []
    name = ""
    for number, text in annotation_lines(path):
        if match := _NAME.match(text):
            name = match.group(1)
        elif match := _ID.match(text):
            class_id = int(match.group(1))
            if class_id in ids:
                raise DataError(f"{path}:{number}: class id {class_id} appears twice")
            ids.append(class_id)
            names.append(name)
    if not ids:
        raise DataError(f"{path}: no 'id:' or 'label_id:' line; expected an AVA label map")
    return LabelMap(ids=np.asarray(ids, dtype=np.int64), names=tuple(names))


@dataclass(frozen=True)
class BoxRows:
    """The rows of an AVA box CSV (GT or detections), one per (box, action).

    Attributes:
        videos: video ids (object array of str).
        seconds: keyframe timestamps in seconds (int64).
        boxes: ``[N, 4]`` float64 ``x1, y1, x2, y2`` as written (normalised for AVA).
        box_text: the four box fields as written, joined by commas (the reference dedups by it).
        actions: 1-based action ids (int64); `NEGATIVE_ACTION` where the column is empty.
        column8: the 8th column as float64 (GT: person id; detections: score); NaN if absent.
    """

    videos: np.ndarray
    seconds: np.ndarray
    boxes: np.ndarray
    box_text: np.ndarray
    actions: np.ndarray
    column8: np.ndarray

    def __len__(self) -> int:
        return len(self.seconds)

    def keys(self) -> np.ndarray:
        """The evaluator key (`image_key`) of every row."""
        return np.asarray(
            [image_key(v, s) for v, s in zip(self.videos, self.seconds)], dtype=object
        )

    def select(self, mask: np.ndarray) -> BoxRows:
        """The rows where ``mask`` is true (or at the given indices)."""
        return BoxRows(
            videos=self.videos[mask],
            seconds=self.seconds[mask],
            boxes=self.boxes[mask],
            box_text=self.box_text[mask],
            actions=self.actions[mask],
            column8=self.column8[mask],
        )


def _number(path: Path, number: int, field: str, what: str, kind: type) -> float | int:
    try:
        return kind(float(field)) if kind is int else float(field)
    except ValueError:
        raise DataError(f"{path}:{number}: {what} {field!r} is not a number") from None


def read_box_csv(path: str | os.PathLike) -> BoxRows:
    """Reads an AVA GT or detection CSV (7 or 8 columns, no header).

    Raises:
        DataError: a missing file or a row with a wrong column count or a non-numeric field.
    """
    path = require_file(Path(path), "an AVA box CSV (video_id,timestamp,x1,y1,x2,y2,action[,x])")
    videos: list[str] = []
    seconds: list[int] = []
    boxes: list[list[float]] = []
    box_text: list[str] = []
    actions: list[int] = []
    column8: list[float] = []
    for number, fields in csv_rows(path):
        if len(fields) not in (7, 8):
            raise DataError(f"{path}:{number}: {len(fields)} columns; expected 7 or 8")
        videos.append(fields[0])
        seconds.append(int(_number(path, number, fields[1], "timestamp", int)))
        boxes.append(
            [float(_number(path, number, f, "box coordinate", float)) for f in fields[2:6]]
        )
        box_text.append(",".join(fields[2:6]))
        action = fields[6]
        actions.append(
            NEGATIVE_ACTION if action == "" else int(_number(path, number, action, "action", int))
        )
        column8.append(
            _number(path, number, fields[7], "score", float) if len(fields) == 8 else np.nan
        )
    return BoxRows(
        videos=np.asarray(videos, dtype=object),
        seconds=np.asarray(seconds, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        box_text=np.asarray(box_text, dtype=object),
        actions=np.asarray(actions, dtype=np.int64),
        column8=np.asarray(column8, dtype=np.float64),
    )


def read_exclusions(path: str | os.PathLike | None) -> set[str]:
    """The excluded keyframe keys (`image_key`) of ``video_id,timestamp`` rows; empty for None."""
    if path is None:
        return set()
    path = require_file(Path(path), "an AVA exclusions CSV (video_id,timestamp)")
    keys = set()
    for number, fields in csv_rows(path):
        if len(fields) != 2:
            raise DataError(f"{path}:{number}: {len(fields)} columns; expected video_id,timestamp")
        keys.add(image_key(fields[0], int(_number(path, number, fields[1], "timestamp", int))))
    return keys


@dataclass(frozen=True)
class FrameList:
    """The frames of every video of an AVA frame list, videos in first-appearance order.

    Attributes:
        videos: video names (the order defines the video index, as in the reference).
        frames: per video, the relative frame paths in file order (frame index = position).
    """

    videos: tuple[str, ...]
    frames: tuple[tuple[str, ...], ...]


def read_frame_lists(paths: list[str | os.PathLike]) -> FrameList:
    """Reads and concatenates AVA frame lists (header line, then 5 whitespace-separated columns)."""
    order: dict[str, list[str]] = {}
    for raw in paths:
        path = require_file(Path(raw), "an AVA frame list (header, then 5 columns per line)")
        for number, text in annotation_lines(path):
            if number == 1:
                continue
            fields = text.split()
            if len(fields) != 5:
                raise DataError(f"{path}:{number}: {len(fields)} columns; expected 5")
            order.setdefault(fields[0], []).append(fields[3])
    if not order:
        raise DataError(f"no frame in {', '.join(str(p) for p in paths)}")
    return FrameList(videos=tuple(order), frames=tuple(tuple(v) for v in order.values()))
