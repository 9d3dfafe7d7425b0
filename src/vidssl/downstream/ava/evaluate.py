"""AVA frame-mAP@0.5: the ActivityNet / Pascal VOC evaluator the SEVERE reference vendors, in numpy.

Protocol (reference `slowfast/utils/ava_evaluation`, ``PascalDetectionEvaluator`` at IoU 0.5):

* Only classes of the label map are read, on both sides; rows of excluded keyframes are dropped on
  both sides. Every GT box counts (no "difficult" boxes).
* Detections with an empty box (``y1 >= y2`` or ``x1 >= x2``) are removed before matching.
* Per keyframe and class, detections are visited in descending score (ties keep file order) and
  each one is matched greedily to the GT box it overlaps most (first such box on ties): a true
  positive if that IoU is >= 0.5 and the box is still unmatched, otherwise a false positive (so a
  duplicate is a false positive). Detections in keyframes without GT are false positives.
* Per class, all detections are ranked by ``np.argsort(score)[::-1]`` (the reference's order, ties
  included), precision/recall are accumulated, precision is made monotone from the right and AP
  is the all-point interpolated area. A class with GT but no detection has AP 0; a class without
  GT has AP NaN and is left out of the mean.
* mAP is the mean AP over the label-map classes that have GT.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from vidssl.data.catalogs.ava import (
    BoxRows,
    LabelMap,
    read_box_csv,
    read_exclusions,
    read_labelmap,
)
from vidssl.errors import DataError

IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class KeyedBoxes:
    """Boxes of one side of the evaluation (GT or detections) after class and key filtering.

    Attributes:
        keys: the keyframe key of each box (object array of str).
        boxes: ``[N, 4]`` float64 ``x1, y1, x2, y2``.
        classes: class id of each box (int64).
        scores: score of each box (float64; 1.0 for GT).
    """

    keys: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray


def keyed_boxes(
    rows: BoxRows, class_ids: np.ndarray, excluded: set[str], use_scores: bool
) -> KeyedBoxes:
    """Keeps the rows of label-map classes outside excluded keys (``use_scores``: column 8)."""
    keys = rows.keys()
    keep = np.isin(rows.actions, class_ids)
    if excluded:
        keep &= np.asarray([key not in excluded for key in keys], dtype=bool)
    scores = rows.column8 if use_scores else np.ones(len(rows), dtype=np.float64)
    return KeyedBoxes(keys[keep], rows.boxes[keep], rows.actions[keep], scores[keep])


def pairwise_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every pair of ``x1, y1, x2, y2`` boxes (no +1 in areas): ``[len(a), len(b)]``."""
    a = boxes_a[:, None, :]
    b = boxes_b[None, :, :]
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _first_appearance_rank(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each row's key by first appearance, the unique keys in that order)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    unique, first, inverse = np.unique(keys.astype(str), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank_of_unique = np.empty(len(unique), dtype=np.int64)
    rank_of_unique[order] = np.arange(len(unique))
    return rank_of_unique[inverse.reshape(-1)], unique[order]


def best_ground_truth(gt: KeyedBoxes, det: KeyedBoxes) -> tuple[np.ndarray, np.ndarray]:
    """For every detection, the GT row of the same keyframe and class it overlaps most.

    Returns:
        ``(gt_index, iou)``: the GT row (-1 if the keyframe has no GT of that class; the first
        such row on ties) and its IoU (0 where there is none).
    """
    best = np.full(len(det.keys), -1, dtype=np.int64)
    best_iou = np.zeros(len(det.keys), dtype=np.float64)
    gt_rows: dict[str, list[int]] = {}
    for index, key in enumerate(gt.keys):
        gt_rows.setdefault(key, []).append(index)
    det_rows: dict[str, list[int]] = {}
    for index, key in enumerate(det.keys):
        det_rows.setdefault(key, []).append(index)
    for key, rows in det_rows.items():
        if key not in gt_rows:
            continue
        d = np.asarray(rows, dtype=np.int64)
        g = np.asarray(gt_rows[key], dtype=np.int64)
        iou = pairwise_iou(det.boxes[d], gt.boxes[g])
        iou[det.classes[d][:, None] != gt.classes[g][None, :]] = -1.0
        column = np.argmax(iou, axis=1)
        value = iou[np.arange(len(d)), column]
        has = value >= 0
        best[d[has]] = g[column[has]]
        best_iou[d[has]] = value[has]
    return best, best_iou


def true_positives(det: KeyedBoxes, best: np.ndarray, best_iou: np.ndarray) -> np.ndarray:
    """True-positive flags of the greedy matching, vectorised.

    Visiting detections per (class, keyframe) by descending score, a detection is a true positive
    iff its best GT has IoU >= 0.5 and no earlier visited detection claimed that GT (a detection
    never falls back to its second-best GT, as in the reference).
    """
    rank, _ = _first_appearance_rank(det.keys)
    order = np.lexsort((-det.scores, rank, det.classes))
    candidate = np.where(best_iou >= IOU_THRESHOLD, best, -1)[order]
    hits_in_order = np.zeros(len(order), dtype=bool)
    claimed = np.flatnonzero(candidate >= 0)
    _, first = np.unique(candidate[claimed], return_index=True)
    hits_in_order[claimed[first]] = True
    hits = np.zeros(len(order), dtype=bool)
    hits[order] = hits_in_order
    return hits


def average_precision(scores: np.ndarray, hits: np.ndarray, n_gt: int) -> float:
    """All-point interpolated AP of detections (VOC devkit); NaN if ``n_gt == 0``, 0 if none.

    Detections are ranked by ``np.argsort(scores)[::-1]``, the reference's order (also for ties).
    """
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(scores)[::-1]
    tp = np.cumsum(hits[order].astype(np.int64))
    fp = np.cumsum((~hits[order]).astype(np.int64))
    precision = np.concatenate([[0.0], tp / (tp + fp), [0.0]])
    recall = np.concatenate([[0.0], tp / float(n_gt), [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def evaluate(
    labelmap: LabelMap, groundtruth: BoxRows, detections: BoxRows, excluded: set[str]
) -> dict[str, object]:
    """Frame-mAP@0.5 of detection rows against GT rows (see the module docstring).

    Returns:
        ``{"mAP": float, "per_class": {class_id: AP}}`` with every label-map class in
        ``per_class`` (NaN where the class has no GT); ``mAP`` is NaN if no class has GT.

    Raises:
        DataError: a kept detection row without a score (7 columns).
    """
    gt = keyed_boxes(groundtruth, labelmap.ids, excluded, use_scores=False)
    det = keyed_boxes(detections, labelmap.ids, excluded, use_scores=True)
    if np.isnan(det.scores).any():
        raise DataError(
            "detections need a score: 8 columns video,timestamp,x1,y1,x2,y2,action,score"
        )
    valid = (det.boxes[:, 0] < det.boxes[:, 2]) & (det.boxes[:, 1] < det.boxes[:, 3])
    det = KeyedBoxes(det.keys[valid], det.boxes[valid], det.classes[valid], det.scores[valid])
    best, best_iou = best_ground_truth(gt, det)
    hits = true_positives(det, best, best_iou)
    rank, _ = _first_appearance_rank(det.keys)
    per_class: dict[int, float] = {}
    for class_id in labelmap.ids.tolist():
        rows = np.flatnonzero(det.classes == class_id)
        rows = rows[np.lexsort((-det.scores[rows], rank[rows]))]
        n_gt = int(np.count_nonzero(gt.classes == class_id))
        per_class[int(class_id)] = average_precision(det.scores[rows], hits[rows], n_gt)
    values = np.asarray(list(per_class.values()), dtype=np.float64)
    present = values[~np.isnan(values)]
    return {"mAP": float(present.mean()) if len(present) else float("nan"), "per_class": per_class}


def evaluate_files(
    labelmap: str | os.PathLike,
    groundtruth: str | os.PathLike,
    detections: str | os.PathLike,
    exclusions: str | os.PathLike | None = None,
) -> dict[str, object]:
    """Frame-mAP@0.5 on the official files, as the SEVERE/ActivityNet AVA evaluator computes it.

    Args:
        labelmap: the ``.pbtxt`` label map (its classes are the evaluated ones; 60 for AVA v2.2).
        groundtruth: GT CSV ``video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]``.
        detections: detections CSV ``video_id,timestamp,x1,y1,x2,y2,action_id,score``.
        exclusions: optional ``video_id,timestamp`` CSV of keyframes left out on both sides.

    Returns:
        ``{"mAP": float, "per_class": {class_id: AP}}`` (AP NaN for a class without GT).
    """
    return evaluate(
        read_labelmap(labelmap),
        read_box_csv(groundtruth),
        read_box_csv(detections),
        read_exclusions(exclusions),
    )
