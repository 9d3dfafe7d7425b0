"""From per-box class scores to evaluated detections, and the AVA detector module.

As in the reference (``ava_eval_helper.get_ava_eval_data``), every predicted box yields one
detection per evaluated class (the label map's), scored by the sigmoid of that class's logit.
During training the reference validates against the **mini GT** (seconds divisible by 4,
`mini_groundtruth`); the final test uses the full GT.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidssl.data.catalogs.ava import BoxRows, LabelMap, read_exclusions, read_labelmap
from vidssl.downstream.ava.evaluate import evaluate
from vidssl.downstream.ava.head import AvaRoIHead
from vidssl.utils.io import atomic_write_text


def detection_rows(
    videos: Sequence[str],
    seconds: Sequence[int] | np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
) -> BoxRows:
    """One detection row per (box, evaluated class).

    Args:
        videos: video id of each box ``[K]``.
        seconds: keyframe second of each box ``[K]``.
        boxes: normalised ``x1, y1, x2, y2`` ``[K, 4]`` (the dataset's ``ori_boxes``).
        scores: per-box class probabilities ``[K, 80]`` (column ``a - 1`` for action ``a``).
        class_ids: the evaluated (label-map) action ids.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    class_ids = np.asarray(class_ids, dtype=np.int64)
    n_boxes, n_classes = len(boxes), len(class_ids)
    text = np.asarray([",".join(f"{v:.6f}" for v in box) for box in boxes], dtype=object)
    return BoxRows(
        videos=np.repeat(np.asarray(videos, dtype=object), n_classes),
        seconds=np.repeat(np.asarray(seconds, dtype=np.int64), n_classes),
        boxes=np.repeat(boxes, n_classes, axis=0),
        box_text=np.repeat(text, n_classes),
        actions=np.tile(class_ids, n_boxes),
        column8=scores[:, class_ids - 1].reshape(-1),
    )


def write_detections_csv(path: str | os.PathLike, rows: BoxRows) -> None:
    """Writes detection rows as ``video,%04d,x1,y1,x2,y2,action,score`` (6 decimals)."""
    lines = [
        f"{video},{second:04d},{','.join(f'{v:.6f}' for v in box)},{action},{score:.6f}\n"
        for video, second, box, action, score in zip(
            rows.videos, rows.seconds, rows.boxes, rows.actions, rows.column8, strict=True
        )
    ]
    atomic_write_text(path, "".join(lines))


def mini_groundtruth(rows: BoxRows, second_stride: int = 4) -> BoxRows:
    """The GT rows of seconds divisible by ``second_stride`` (the reference's validation GT)."""
    return rows.select(rows.seconds % second_stride == 0)


def evaluate_predictions(
    labelmap: LabelMap | str | os.PathLike,
    groundtruth: BoxRows,
    predictions: BoxRows,
    exclusions: set[str] | str | os.PathLike | None = None,
) -> dict[str, object]:
    """frame-mAP@0.5 of `detection_rows` against GT rows (`evaluate`), in memory."""
    if not isinstance(labelmap, LabelMap):
        labelmap = read_labelmap(labelmap)
    if not isinstance(exclusions, set):
        exclusions = read_exclusions(Path(exclusions) if exclusions is not None else None)
    return evaluate(labelmap, groundtruth, predictions, exclusions)


class AvaDetector(nn.Module):
    """Encoder + `AvaRoIHead`: ``forward(clips, boxes)`` → per-box logits ``[K, 80]``.

    Args:
        encoder: a video backbone with ``forward_map(clips) -> B×C×T'×H'×W'`` (stride 16).
        head: the RoI head (its ``in_channels`` must equal the encoder's ``feature_dim``).
    """

    def __init__(self, encoder: nn.Module, head: AvaRoIHead | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head or AvaRoIHead(in_channels=int(encoder.feature_dim))

    def forward(self, clips: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Logits ``[K, num_classes]`` for ``boxes`` ``[K, 5]`` (batch index, clip pixels)."""
        return self.head(self.encoder.forward_map(clips), boxes)
