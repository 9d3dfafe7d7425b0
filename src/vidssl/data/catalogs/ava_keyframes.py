"""AVA keyframes: boxes per (video, second) merged from GT and detection CSVs, like the reference.

Reference behaviour (SEVERE's PySlowFast ``ava_helper``) reproduced here:

* Every listed CSV is read in order. A "predicted" list keeps only rows whose 8th column is
  ``>= score_threshold`` (0.9); a GT list keeps every row. Rows whose second is not a multiple of
  ``second_stride`` are dropped (4 for the mini validation set, 1 otherwise).
* Boxes are deduplicated per (video, second) by their **text** ``"x1,y1,x2,y2"`` as written, in
  first-appearance order, and the labels of all rows of a box are merged (an empty action, i.e.
  a negative box, adds no label: the box stays with an all-zero target).
* Keyframes are the seconds in ``[902, 1798]`` with at least one box, videos in frame-list order
  (videos absent from the frame list are ignored), seconds ascending; the centre frame of second
  ``s`` is ``(s - 900) * 30`` in the frames cut from second 900 at 30 fps.
* Train boxes come from ``ava_train_v2.2.csv`` as a GT list plus, as predicted lists,
  ``ava_train_v2.2.csv`` again and the detector's ``..._include_negative_v2.2.csv``. Listing the GT
  file as predicted makes its 8th column, the **person id**, act as the score (a quirk inherited
  from PySlowFast); those rows can only repeat boxes already read from the GT list, so the merged
  boxes and labels are the same with or without it (``gt_copy_as_predicted=False`` drops it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidssl.data.catalogs.ava import NEGATIVE_ACTION, BoxRows, read_box_csv
from vidssl.errors import DataError

FPS = 30
"""Frame rate of the extracted frames."""
CUT_START_SECOND = 900
"""Frame 0 of every extracted video is at this second of the original video."""
VALID_SECONDS = (902, 1798)
"""The first and last annotated keyframe second (inclusive)."""
NUM_ACTIONS = 80
SCORE_THRESHOLD = 0.9

TRAIN_GT = "ava_train_v2.2.csv"
VAL_GT = "ava_val_v2.2.csv"
TRAIN_DETECTIONS = (
    "person_box_67091280_iou90/ava_detection_train_boxes_and_labels_include_negative_v2.2.csv"
)
VAL_DETECTIONS = "person_box_67091280_iou90/ava_detection_val_boxes_and_labels.csv"
LABELMAP = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
EXCLUSIONS = "ava_val_excluded_timestamps_v2.2.csv"


@dataclass(frozen=True)
class BoxList:
    """One annotation CSV in a box source list.

    Attributes:
        path: the CSV.
        predicted: True for a "predicted" list (filtered by column 8 >= the score threshold).
    """

    path: Path
    predicted: bool


def train_box_lists(
    annotation_dir: str | os.PathLike, gt_copy_as_predicted: bool = True
) -> list[BoxList]:
    """The reference's train box sources (see the module docstring for the person-id quirk)."""
    root = Path(annotation_dir)
    lists = [BoxList(root / TRAIN_GT, predicted=False)]
    if gt_copy_as_predicted:
        lists.append(BoxList(root / TRAIN_GT, predicted=True))
    lists.append(BoxList(root / TRAIN_DETECTIONS, predicted=True))
    return lists


def eval_box_lists(annotation_dir: str | os.PathLike) -> list[BoxList]:
    """The reference's val/test box source: the detector's val boxes (score >= 0.9)."""
    return [BoxList(Path(annotation_dir) / VAL_DETECTIONS, predicted=True)]


@dataclass(frozen=True)
class Keyframes:
    """Keyframes and their deduplicated boxes, flat arrays with per-keyframe offsets.

    Attributes:
        video_index: index of the keyframe's video in the frame list ``[M]``.
        second: keyframe second ``[M]``.
        center_frame: ``(second - 900) * fps`` ``[M]``.
        box_offsets: boxes of keyframe ``i`` are rows ``box_offsets[i]:box_offsets[i+1]`` ``[M+1]``.
        boxes: normalised ``x1, y1, x2, y2`` ``[B, 4]`` float32.
        labels: multi-hot targets ``[B, num_actions]`` uint8 (action ``a`` at column ``a-1``).
    """

    video_index: np.ndarray
    second: np.ndarray
    center_frame: np.ndarray
    box_offsets: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.second)

    def boxes_of(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(boxes [K, 4], labels [K, num_actions])`` of keyframe ``index``."""
        start, end = self.box_offsets[index], self.box_offsets[index + 1]
        return self.boxes[start:end], self.labels[start:end]


def _kept_rows(rows: BoxRows, predicted: bool, score_threshold: float, stride: int) -> np.ndarray:
    keep = rows.seconds % stride == 0
    if predicted:
        keep &= rows.column8 >= score_threshold
    return np.flatnonzero(keep)


def collect_keyframes(
    box_lists: list[BoxList] | list[tuple[BoxRows, bool]],
    videos: tuple[str, ...] | list[str],
    score_threshold: float = SCORE_THRESHOLD,
    second_stride: int = 1,
    valid_seconds: tuple[int, int] = VALID_SECONDS,
    fps: int = FPS,
    cut_start: int = CUT_START_SECOND,
    num_actions: int = NUM_ACTIONS,
) -> Keyframes:
    """Merges box lists into keyframes (see the module docstring).

    Args:
        box_lists: `BoxList` entries, or already read ``(rows, predicted)`` pairs.
        videos: the frame list's video names (their order is the video index).
        score_threshold: minimum column-8 value of a predicted row.
        second_stride: keep seconds divisible by it (4 = the reference's mini validation set).
        valid_seconds: first and last keyframe second (inclusive).
        fps: frame rate of the extracted frames.
        cut_start: second of frame 0.
        num_actions: width of the multi-hot targets.

    Raises:
        DataError: an action id outside ``1..num_actions``.
    """
    video_index = {name: index for index, name in enumerate(videos)}
    merged: dict[tuple[int, int], dict[str, tuple[np.ndarray, set[int]]]] = {}
    for entry in box_lists:
        rows, predicted = (
            (read_box_csv(entry.path), entry.predicted) if isinstance(entry, BoxList) else entry
        )
        for row in _kept_rows(rows, predicted, score_threshold, second_stride):
            video = video_index.get(rows.videos[row])
            second = int(rows.seconds[row])
            if video is None or not valid_seconds[0] <= second <= valid_seconds[1]:
                continue
            action = int(rows.actions[row])
            if action != NEGATIVE_ACTION and not 1 <= action <= num_actions:
                raise DataError(f"action id {action} outside 1..{num_actions} ({rows.videos[row]})")
            box = merged.setdefault((video, second), {}).setdefault(
                rows.box_text[row], (rows.boxes[row], set())
            )
            if action != NEGATIVE_ACTION:
                box[1].add(action)
    keys = sorted(merged)
    boxes, labels, offsets = [], [], [0]
    for key in keys:
        for box, actions in merged[key].values():
            target = np.zeros(num_actions, dtype=np.uint8)
            target[[a - 1 for a in actions]] = 1
            boxes.append(box)
            labels.append(target)
        offsets.append(len(boxes))
    seconds = np.asarray([key[1] for key in keys], dtype=np.int64)
    return Keyframes(
        video_index=np.asarray([key[0] for key in keys], dtype=np.int64),
        second=seconds,
        center_frame=(seconds - cut_start) * fps,
        box_offsets=np.asarray(offsets, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(labels, dtype=np.uint8).reshape(-1, num_actions),
    )


def clip_frame_indices(
    center_frame: int, n_frames: int, num_frames: int = 32, stride: int = 2
) -> np.ndarray:
    """Frame indices of the clip around a keyframe, as in the reference.

    ``range(center - L/2, center + L/2, stride)`` with ``L = num_frames * stride``, clamped to
    ``[0, n_frames - 1]`` (32 frames at stride 2 by default).
    """
    half = num_frames * stride // 2
    return np.clip(np.arange(center_frame - half, center_frame + half, stride), 0, n_frames - 1)
