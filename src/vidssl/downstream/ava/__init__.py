"""AVA v2.2 spatio-temporal action detection (SEVERE): evaluator, RoI head, dataset, detector.

Public API:

* `evaluate_files(labelmap, groundtruth, detections, exclusions)`: frame-mAP@0.5 on the official
  files, ``{"mAP": float, "per_class": {class_id: AP}}``.
* `evaluate_predictions`, `detection_rows`, `write_detections_csv`, `mini_groundtruth`: the same
  from per-box class scores, in memory.
* `AvaDetector`, `AvaRoIHead`, `ava_loss`, `roi_align`: the model side.
* `build_ava_dataset`, `AvaDataset`, `AvaClipSpec`, `ava_collate`: the data side.
"""

from vidssl.downstream.ava.dataset import AvaClipSpec, AvaDataset, ava_collate, build_ava_dataset
from vidssl.downstream.ava.evaluate import evaluate, evaluate_files
from vidssl.downstream.ava.head import AvaRoIHead, ava_loss
from vidssl.downstream.ava.predictions import (
    AvaDetector,
    detection_rows,
    evaluate_predictions,
    mini_groundtruth,
    write_detections_csv,
)
from vidssl.downstream.ava.roi_align import RoIAlign, roi_align

__all__ = [
    "AvaClipSpec",
    "AvaDataset",
    "AvaDetector",
    "AvaRoIHead",
    "RoIAlign",
    "ava_collate",
    "ava_loss",
    "build_ava_dataset",
    "detection_rows",
    "evaluate",
    "evaluate_files",
    "evaluate_predictions",
    "mini_groundtruth",
    "roi_align",
    "write_detections_csv",
]
