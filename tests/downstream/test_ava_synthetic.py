"""Synthetic AVA in the official layout: evaluator, boxes on the frames, and the dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidssl.data.catalogs.ava import read_box_csv, read_labelmap
from vidssl.data.synthetic.ava import ACTIONS, draw_actor, make_synthetic_ava, render_frame
from vidssl.downstream.ava import evaluate_files
from vidssl.downstream.ava.dataset import AvaClipSpec, ava_collate, build_ava_dataset
from vidssl.errors import CorruptVideoError
from vidssl.utils.jpeg import decode_jpeg

DETECTIONS = "person_box_67091280_iou90/ava_detection_val_boxes_and_labels.csv"
LABELMAP = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ava")
    make_synthetic_ava(root, train_videos=2, val_videos=2, keyframes=5, size=(48, 64), seed=1)
    return root


def test_groundtruth_as_detections_scores_map_one(synthetic: Path) -> None:
    notes = synthetic / "annotations"
    gt_lines = (notes / "ava_val_v2.2.csv").read_text().splitlines()
    as_detections = "".join(line.rsplit(",", 1)[0] + ",1.0\n" for line in gt_lines)
    (synthetic / "gt_as_det.csv").write_text(as_detections)  # person id column -> score 1.0
    result = evaluate_files(
        notes / LABELMAP,
        notes / "ava_val_v2.2.csv",
        synthetic / "gt_as_det.csv",
        notes / "ava_val_excluded_timestamps_v2.2.csv",
    )
    assert result["mAP"] == 1.0
    assert set(result["per_class"]) == set(ACTIONS) == {1, 7, 12, 14}
    assert all(value == 1.0 for value in result["per_class"].values())  # every class has GT


def test_files_follow_the_official_formats(synthetic: Path) -> None:
    notes = synthetic / "annotations"
    assert read_labelmap(notes / LABELMAP).name_of() == ACTIONS
    gt = read_box_csv(notes / "ava_val_v2.2.csv")
    assert gt.seconds.min() == 902 and gt.seconds.max() == 906
    assert ((gt.boxes >= 0) & (gt.boxes <= 1)).all() and np.isin(gt.actions, list(ACTIONS)).all()
    det = read_box_csv(notes / DETECTIONS)
    assert (det.actions == -1).any()  # background boxes with an empty action
    assert (det.column8 < 0.9).any() and (det.column8 >= 0.9).mean() > 0.7
    excluded = (notes / "ava_val_excluded_timestamps_v2.2.csv").read_text().split()
    assert excluded == ["synth_val_000,0906"]
    header, first = (notes / "val.csv").read_text().splitlines()[:2]
    assert header.split() == ["original_vido_id", "video_id", "frame_id", "path", "labels"]
    assert first.split() == [
        "synth_val_000",
        "0",
        "0",
        "synth_val_000/synth_val_000_000001.jpg",
        '""',
    ]


def test_rendered_actor_fills_exactly_its_box() -> None:
    rng = np.random.default_rng(0)
    for actions in ((14,), (7, 1), (12,)):
        actor = draw_actor(actions, rng, 64, 48)
        for frame in (0, 17, 60):
            image = render_frame([actor], np.zeros((48, 64, 3), dtype=np.float32), frame)
            rows, cols = np.nonzero(image.max(axis=2))
            x1, y1, x2, y2 = actor.box(frame, 64, 48)
            # pixel (r, c) is drawn iff x1 <= c < x2 and y1 <= r < y2
            assert (cols.min(), cols.max()) == (np.ceil(x1), np.ceil(x2) - 1)
            assert (rows.min(), rows.max()) == (np.ceil(y1), np.ceil(y2) - 1)


def test_motion_defines_the_actions(synthetic: Path) -> None:
    gt = read_box_csv(synthetic / "annotations" / "ava_train_v2.2.csv")
    for video in gt.videos:
        frame = synthetic / "frames" / video / f"{video}_{(906 - 900) * 30 + 1:06d}.jpg"
        assert decode_jpeg(frame.read_bytes()).shape == (48, 64, 3)
    for video in np.unique(gt.videos):
        for person in np.unique(gt.column8[gt.videos == video]):
            rows = (gt.videos == video) & (gt.column8 == person)
            actions = set(gt.actions[rows].tolist())
            unique_boxes = np.unique(gt.boxes[rows], axis=0)
            assert (len(unique_boxes) == 1) == (actions == {12})  # only "stand" never moves


def test_dataset_reads_every_split(synthetic: Path) -> None:
    spec = AvaClipSpec(num_frames=8, stride=2, crop_size=32, jitter=(48, 56))
    train = build_ava_dataset(synthetic, "train", spec, seed=0)
    val = build_ava_dataset(synthetic, "val", spec)
    test = build_ava_dataset(synthetic, "test", spec)
    assert (len(train), len(val), len(test)) == (10, 2, 10)  # val keeps seconds % 4 == 0 only
    item = train[3]
    assert item["clip"].shape == (3, 8, 32, 32) and item["clip"].dtype == torch.float32
    assert item["boxes"].shape == (len(item["labels"]), 4)
    assert item["labels"].shape[1] == 80 and item["ori_boxes"].max() <= 1
    assert (item["boxes"] >= 0).all() and (item["boxes"] <= 31).all()
    assert train[3]["clip"].equal(item["clip"])  # deterministic per (seed, epoch, index)
    train.epoch = 1
    assert not train[3]["clip"].equal(item["clip"])
    assert test[0]["clip"].shape == (3, 8, 32, 42)  # full frame: short side 32, long floor(42.67)
    batch = ava_collate([val[0], val[1]])
    n_boxes = len(val[0]["boxes"]) + len(val[1]["boxes"])
    assert batch["clip"].shape == (2, 3, 8, 32, 32)
    assert batch["boxes"].shape == (n_boxes, 5)
    assert batch["boxes"][:, 0].tolist() == [0.0] * len(val[0]["boxes"]) + [1.0] * len(
        val[1]["boxes"]
    )
    assert batch["metadata"][0].tolist() == [val[0]["video_index"], 904]


def test_unreadable_video_is_replaced_in_train_and_fatal_in_evaluation(tmp_path: Path) -> None:
    make_synthetic_ava(tmp_path, train_videos=2, val_videos=1, keyframes=2, size=(32, 40), seed=2)
    for frame in (tmp_path / "frames" / "synth_train_000").glob("*.jpg"):
        frame.write_bytes(b"not a jpeg")
    spec = AvaClipSpec(num_frames=4, stride=2, crop_size=16, jitter=(24, 28))
    train = build_ava_dataset(tmp_path, "train", spec)
    assert train.frame_list.videos[int(train.keyframes.video_index[0])] == "synth_train_000"
    item = train[0]
    assert item["video"] == "synth_train_001"  # a keyframe of the readable video instead
    assert train.failures.failed_videos() == ["synth_train_000"]
    for frame in (tmp_path / "frames" / "synth_val_000").glob("*.jpg"):
        frame.unlink()
    with pytest.raises(CorruptVideoError):
        build_ava_dataset(tmp_path, "test", spec)[0]


def test_test_clip_holds_the_frames_around_the_keyframe(synthetic: Path) -> None:
    spec = AvaClipSpec(num_frames=4, stride=3, crop_size=48)  # short side 48: no resize
    dataset = build_ava_dataset(synthetic, "test", spec)
    item = dataset[1]
    video, second = item["video"], item["second"]
    center = (second - 900) * 30
    pixels = (item["clip"] * 0.225 + 0.45) * 255  # undo the normalisation
    for t, frame in enumerate(range(center - 6, center + 6, 3)):
        path = synthetic / "frames" / video / f"{video}_{frame + 1:06d}.jpg"
        expected = torch.tensor(decode_jpeg(path.read_bytes())).permute(2, 0, 1).float()
        assert torch.allclose(pixels[:, t], expected, atol=1e-3)
