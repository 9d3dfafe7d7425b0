"""Per-video aggregation with clips in shuffled video order: rows and probabilities stay aligned."""

from __future__ import annotations

import numpy as np
import torch

from vidssl.eval.linear import mean_probabilities, topk_accuracy


def test_mean_probabilities_aligns_rows_with_shuffled_clip_order():
    # clips of videos 7, 2, 7, 5, 2 (shuffled); logits chosen so each softmax is known exactly
    big = 50.0  # softmax([50, 0]) = [1, e^-50] ~ [1, 0]
    logits = torch.tensor([[big, 0.0], [0.0, big], [big, 0.0], [0.0, 0.0], [big, 0.0]])
    probs, rows = mean_probabilities(logits, np.array([7, 2, 7, 5, 2]))
    assert rows.tolist() == [2, 5, 7]
    np.testing.assert_allclose(probs.numpy(), [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]], atol=1e-12)


def test_views_are_averaged_before_videos():
    # [N=2 clips of video 3, V=2 views, K=2]: four softmaxes [1,0], [0,1], [1,0], [1,0] -> 0.75
    big = 50.0
    logits = torch.tensor([[[big, 0.0], [0.0, big]], [[big, 0.0], [big, 0.0]]])
    probs, rows = mean_probabilities(logits, np.array([3, 3]))
    assert rows.tolist() == [3]
    np.testing.assert_allclose(probs.numpy(), [[0.75, 0.25]], atol=1e-12)


def test_accuracy_uses_the_labels_of_the_aggregated_rows():
    logits = torch.tensor([[0.0, 9.0], [9.0, 0.0], [0.0, 9.0]])
    probs, rows = mean_probabilities(logits, np.array([8, 1, 8]))  # rows [1, 8]
    labels_by_video = {1: 0, 8: 1}
    labels = np.array([labels_by_video[int(r)] for r in rows])
    assert topk_accuracy(probs, labels, ks=(1,)) == {"top1": 1.0}
    assert topk_accuracy(probs, labels[::-1].copy(), ks=(1,)) == {"top1": 0.0}
