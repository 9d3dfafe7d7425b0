"""Charades metrics: per-class average precision, mAP and the max-ensemble over test views.

`mean_ap` follows the SEVERE / PySlowFast ``get_map`` (severe.md §7): classes whose label column
has no positive are dropped, every remaining class gets scikit-learn's non-interpolated
``average_precision_score`` (step-wise precision-recall, tied scores form one threshold), and the
mean over those classes is returned. Written in numpy float64 (no scikit-learn dependency).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vidssl.errors import DataError


def _as_matrix(values: Any, what: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"{what} must be [N, C], got shape {array.shape}")
    return array


def average_precision(scores: Any, labels: Any) -> float:
    """Non-interpolated average precision of one class (scikit-learn's definition).

    ``AP = Σ_k (R_k − R_{k−1}) · P_k`` over the distinct score thresholds in decreasing order,
    where all items with the same score enter together.

    Args:
        scores: ``[N]`` scores.
        labels: ``[N]`` binary labels with at least one positive.

    Returns:
        The AP in ``[0, 1]``.
    """
    score = _as_matrix(scores, "scores")[:, 0]
    label = _as_matrix(labels, "labels")[:, 0] > 0
    positives = int(label.sum())
    if positives == 0:
        raise DataError("average precision needs at least one positive label")
    order = np.argsort(-score, kind="mergesort")
    score, label = score[order], label[order]
    # last index of each run of equal scores = one threshold
    ends = np.flatnonzero(np.r_[np.diff(score) != 0, True])
    true_pos = np.cumsum(label)[ends]
    precision = true_pos / (ends + 1)
    recall = true_pos / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_class_ap(scores: Any, labels: Any) -> np.ndarray:
    """AP of every class, ``nan`` for classes without a positive label.

    Args:
        scores: ``[N, C]`` scores (tensor or array).
        labels: ``[N, C]`` binary labels.

    Returns:
        ``[C]`` float64 array.
    """
    score = _as_matrix(scores, "scores")
    label = _as_matrix(labels, "labels")
    if score.shape != label.shape:
        raise DataError(f"scores {score.shape} and labels {label.shape} differ in shape")
    result = np.full(score.shape[1], np.nan)
    for c in range(score.shape[1]):
        if label[:, c].any():
            result[c] = average_precision(score[:, c], label[:, c])
    return result


def mean_ap(scores: Any, labels: Any) -> float:
    """Charades mAP: mean AP over the classes with at least one positive label.

    Args:
        scores: ``[N, C]`` scores (tensor or array); any monotone scale (logits or probabilities).
        labels: ``[N, C]`` binary labels.

    Returns:
        The mean AP (a fraction); 0.0 when no class has a positive (the reference's fallback).
    """
    aps = per_class_ap(scores, labels)
    kept = aps[~np.isnan(aps)]
    return float(kept.mean()) if kept.size else 0.0


def max_ensemble(
    view_scores: torch.Tensor, video_index: torch.Tensor, num_videos: int
) -> torch.Tensor:
    """Element-wise maximum of the view scores of each video (SlowFast ``ensemble_method=max``).

    Args:
        view_scores: ``[V, C]`` scores of V views.
        video_index: ``[V]`` int video of each view, in ``[0, num_videos)``.
        num_videos: Number of videos.

    Returns:
        ``[num_videos, C]``; a video with no view keeps ``-1e10`` (the reference's start value).
    """
    out = torch.full(
        (num_videos, view_scores.shape[1]), -1e10, dtype=view_scores.dtype,
        device=view_scores.device,
    )  # fmt: skip
    index = video_index.long().view(-1, 1).expand_as(view_scores)
    return out.scatter_reduce(0, index, view_scores, reduce="amax", include_self=True)
