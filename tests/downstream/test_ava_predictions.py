"""Per-box scores → one detection per evaluated class → frame-mAP; the detector module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidssl.data.catalogs.ava import LabelMap, read_box_csv
from vidssl.downstream.ava import evaluate_files
from vidssl.downstream.ava.head import ava_loss
from vidssl.downstream.ava.predictions import (
    AvaDetector,
    detection_rows,
    evaluate_predictions,
    mini_groundtruth,
    write_detections_csv,
)
from vidssl.models import build_backbone


def test_every_box_gives_one_detection_per_evaluated_class(tmp_path: Path) -> None:
    (tmp_path / "gt.csv").write_text("v,0902,0.1,0.1,0.4,0.9,1,0\nv,0904,0.5,0.1,0.9,0.9,3,0\n")
    (tmp_path / "map.pbtxt").write_text(
        'item {\n  name: "a"\n  id: 1\n}\nitem {\n  name: "c"\n  id: 3\n}\n'
    )
    scores = np.zeros((2, 80))
    scores[0, [0, 2]] = [0.9, 0.2]  # box A (0902): class 1, class 3
    scores[1, [0, 2, 5]] = [0.95, 0.7, 0.99]  # box B (0904); class 6 is not evaluated
    rows = detection_rows(
        ["v", "v"], [902, 904], np.array([[0.1, 0.1, 0.4, 0.9], [0.5, 0.1, 0.9, 0.9]]), scores,
        np.array([1, 3]),
    )  # fmt: skip
    assert rows.actions.tolist() == [1, 3, 1, 3]
    assert rows.column8.tolist() == [0.9, 0.2, 0.95, 0.7]
    assert rows.seconds.tolist() == [902, 902, 904, 904]
    labelmap = LabelMap(ids=np.array([1, 3]), names=("a", "c"))
    result = evaluate_predictions(labelmap, read_box_csv(tmp_path / "gt.csv"), rows)
    # class 1: B (0.95) has no class-1 GT -> FP, then A TP: AP 1/2. class 3: B TP, A FP: AP 1.
    assert result["per_class"] == {1: 0.5, 3: 1.0}
    assert result["mAP"] == pytest.approx(0.75)
    write_detections_csv(tmp_path / "det.csv", rows)
    assert (tmp_path / "det.csv").read_text().splitlines()[0] == (
        "v,0902,0.100000,0.100000,0.400000,0.900000,1,0.900000"
    )
    from_files = evaluate_files(tmp_path / "map.pbtxt", tmp_path / "gt.csv", tmp_path / "det.csv")
    assert from_files == result
    mini = mini_groundtruth(read_box_csv(tmp_path / "gt.csv"))
    assert mini.seconds.tolist() == [904]


def test_detector_trains_on_boxes_of_a_tiny_backbone() -> None:
    torch.manual_seed(0)
    encoder = build_backbone("r2plus1d_18", width_mult=1 / 16)
    detector = AvaDetector(encoder)
    assert detector.head.projection.in_features == encoder.feature_dim
    clips = torch.randn(2, 3, 8, 32, 32)
    boxes = torch.tensor([[0.0, 0, 0, 31, 31], [1.0, 4, 4, 20, 28], [1.0, 10, 0, 31, 15]])
    targets = torch.zeros(3, 80)
    targets[0, 4] = targets[1, 11] = targets[2, 13] = 1
    optimiser = torch.optim.SGD(detector.parameters(), lr=0.5)
    losses = []
    detector.train()
    for _ in range(8):
        loss = ava_loss(detector(clips, boxes), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert encoder.stem[0].weight.grad is not None and encoder.stem[0].weight.grad.abs().sum() > 0
