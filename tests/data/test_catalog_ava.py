"""AVA annotation readers and keyframe assembly from hand-written CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidssl.data.catalogs.ava import read_box_csv, read_exclusions, read_frame_lists
from vidssl.data.catalogs.ava_keyframes import (
    TRAIN_DETECTIONS,
    TRAIN_GT,
    BoxList,
    clip_frame_indices,
    collect_keyframes,
    train_box_lists,
)
from vidssl.errors import DataError

GT = """v1,0902,0.1,0.2,0.3,0.4,5,0
v1,0902,0.1,0.2,0.3,0.4,7,0
v1,0902,0.5,0.5,0.9,0.9,1,1
v1,0903,0.1,0.2,0.3,0.4,2,2
v1,0901,0.1,0.2,0.3,0.4,2,0
v9,0902,0.1,0.2,0.3,0.4,2,0
v2,0904,0.1,0.2,0.3,0.4,3,0
"""

DETECTIONS = """v1,0902,0.1,0.2,0.3,0.4,,0.95
v1,0902,0.10,0.2,0.3,0.4,4,0.95
v1,0903,0.6,0.6,0.8,0.8,,0.92
v1,0903,0.6,0.1,0.8,0.3,9,0.5
v2,0904,0.1,0.2,0.3,0.4,80,0.9
"""

FRAME_LIST = """original_vido_id video_id frame_id path labels
v2 0 0 v2/v2_000001.jpg ""
v2 0 1 v2/v2_000002.jpg ""
v1 1 0 v1/v1_000001.jpg ""
"""


@pytest.fixture()
def annotations(tmp_path: Path) -> Path:
    (tmp_path / TRAIN_DETECTIONS).parent.mkdir(parents=True)
    (tmp_path / TRAIN_GT).write_text(GT)
    (tmp_path / TRAIN_DETECTIONS).write_text(DETECTIONS)
    (tmp_path / "train.csv").write_text(FRAME_LIST)
    return tmp_path


def _hot(*actions: int) -> list[int]:
    row = [0] * 80
    for action in actions:
        row[action - 1] = 1
    return row


def test_readers(annotations: Path) -> None:
    rows = read_box_csv(annotations / TRAIN_DETECTIONS)
    assert rows.actions.tolist() == [-1, 4, -1, 9, 80]
    assert rows.box_text[1] == "0.10,0.2,0.3,0.4"
    assert rows.column8.tolist() == [0.95, 0.95, 0.92, 0.5, 0.9]
    frames = read_frame_lists([annotations / "train.csv"])
    assert frames.videos == ("v2", "v1")
    assert frames.frames == (("v2/v2_000001.jpg", "v2/v2_000002.jpg"), ("v1/v1_000001.jpg",))
    (annotations / "excl.csv").write_text("v1,0902\nv2,904\n")
    assert read_exclusions(annotations / "excl.csv") == {"v1,0902", "v2,0904"}
    (annotations / "bad.csv").write_text("v1,0902,0.1,0.2\n")
    with pytest.raises(DataError, match=r"bad\.csv:1: 4 columns"):
        read_box_csv(annotations / "bad.csv")


def test_boxes_are_deduplicated_by_text_and_labels_merged(annotations: Path) -> None:
    videos = read_frame_lists([annotations / "train.csv"]).videos
    keyframes = collect_keyframes(train_box_lists(annotations), videos)
    # v2 is video 0 (frame-list order); 0901 is outside [902, 1798]; v9 is not in the frame list
    assert keyframes.video_index.tolist() == [0, 1, 1]
    assert keyframes.second.tolist() == [904, 902, 903]
    assert keyframes.center_frame.tolist() == [120, 60, 90]
    assert keyframes.box_offsets.tolist() == [0, 1, 4, 6]
    boxes, labels = keyframes.boxes_of(1)  # v1 0902
    # the GT box (5, 7; the detector's negative copy adds nothing), the second GT box, then the
    # detector's "0.10,..." box: the same numbers written differently, so a separate box
    assert np.allclose(boxes, [[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.9, 0.9], [0.1, 0.2, 0.3, 0.4]])
    assert labels.tolist() == [_hot(5, 7), _hot(1), _hot(4)]
    boxes, labels = keyframes.boxes_of(2)  # v1 0903: GT box and a negative detection (0.5 dropped)
    assert np.allclose(boxes, [[0.1, 0.2, 0.3, 0.4], [0.6, 0.6, 0.8, 0.8]])
    assert labels.tolist() == [_hot(2), _hot()]
    assert keyframes.boxes_of(0)[1].tolist() == [_hot(3, 80)]


def test_person_id_as_score_quirk_changes_nothing(annotations: Path) -> None:
    videos = ("v2", "v1")
    quirk = collect_keyframes(train_box_lists(annotations, gt_copy_as_predicted=True), videos)
    fixed = collect_keyframes(train_box_lists(annotations, gt_copy_as_predicted=False), videos)
    assert len(train_box_lists(annotations, True)) == 3
    for name in ("video_index", "second", "box_offsets", "boxes", "labels"):
        assert np.array_equal(getattr(quirk, name), getattr(fixed, name))
    # the GT file alone as a "predicted" list keeps only rows whose person id is >= 0.9
    only_copy = collect_keyframes([BoxList(annotations / TRAIN_GT, predicted=True)], videos)
    assert only_copy.second.tolist() == [902, 903]
    assert only_copy.labels.tolist() == [_hot(1), _hot(2)]


def test_second_stride_keeps_the_mini_validation_seconds(annotations: Path) -> None:
    lists = [BoxList(annotations / TRAIN_GT, predicted=False)]
    assert collect_keyframes(lists, ("v2", "v1"), second_stride=4).second.tolist() == [904]


def test_action_out_of_range_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "gt.csv").write_text("v1,0902,0.1,0.2,0.3,0.4,81,0\n")
    with pytest.raises(DataError, match="81"):
        collect_keyframes([BoxList(tmp_path / "gt.csv", predicted=False)], ("v1",))


def test_clip_frames_are_32_at_stride_2_centred_and_clamped() -> None:
    middle = clip_frame_indices(60, 100)
    assert middle.tolist() == list(range(28, 92, 2))
    start = clip_frame_indices(10, 100)
    assert start.tolist() == [0] * 11 + list(range(0, 42, 2))
    end = clip_frame_indices(95, 100)
    assert end.tolist() == list(range(63, 99, 2)) + [99] * 14
    assert len(start) == len(end) == 32
