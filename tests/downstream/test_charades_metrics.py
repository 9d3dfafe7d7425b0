"""Charades mAP and the max-ensemble, against hand-worked values (severe.md §7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidssl.downstream.charades import mean_ap
from vidssl.downstream.charades.metrics import average_precision, max_ensemble, per_class_ap


def test_perfect_ranking_has_ap_one():
    assert average_precision([0.9, 0.8, 0.1], [1, 1, 0]) == 1.0


def test_reversed_ranking_puts_the_only_positive_last():
    # the positive is ranked 3rd of 3: precision 1/3 at recall 1
    assert average_precision([0.1, 0.2, 0.9], [1, 0, 0]) == pytest.approx(1 / 3)
    # two positives ranked 3rd and 4th of 4: (1/3 + 2/4) / 2
    assert average_precision([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == pytest.approx(5 / 12)


def test_tied_scores_form_one_threshold_like_scikit_learn():
    # one threshold holding 2 positives and 1 negative: P = 2/3 at R = 1. Breaking the tie
    # optimistically would give 1, pessimistically (0.5·1/2 + 0.5·2/3) = 7/12.
    assert average_precision([0.5, 0.5, 0.5], [1, 1, 0]) == pytest.approx(2 / 3)
    # threshold 0.9: P 0, R 0; 0.5: P 1/3, R 1/2; 0.1: P 2/4, R 1 → 1/6 + 1/4
    assert average_precision([0.9, 0.5, 0.5, 0.1], [0, 1, 0, 1]) == pytest.approx(5 / 12)


def test_mean_ap_drops_classes_without_positives():
    scores = torch.tensor(
        [[0.9, 0.1, 0.5, 0.3], [0.8, 0.2, 0.5, 0.2], [0.1, 0.9, 0.5, 0.1]], dtype=torch.float32
    )
    labels = torch.tensor([[1, 1, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    # class 0 perfect (1), class 1 its only positive ranked 3rd of 3 (1/3), class 2 all tied
    # with 2 positives of 3 (2/3), class 3 has no positive: dropped
    aps = per_class_ap(scores, labels)
    assert aps[:3] == pytest.approx([1.0, 1 / 3, 2 / 3])
    assert np.isnan(aps[3])
    assert mean_ap(scores, labels) == pytest.approx((1.0 + 1 / 3 + 2 / 3) / 3)
    assert mean_ap(scores.numpy(), labels.numpy()) == mean_ap(scores, labels)
    assert mean_ap(scores, torch.zeros_like(labels)) == 0.0


def test_mean_ap_matches_a_brute_force_definition_on_random_data():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(40, 6)).astype(float)  # many ties
    labels = (rng.random((40, 6)) < 0.3).astype(int)

    def brute(s: np.ndarray, y: np.ndarray) -> float:
        # AP = Σ over distinct thresholds t (descending) of ΔR(t)·P(t)
        total, previous_recall = 0.0, 0.0
        for t in sorted(set(s.tolist()), reverse=True):
            chosen = s >= t
            precision = (y[chosen] == 1).sum() / chosen.sum()
            recall = (y[chosen] == 1).sum() / (y == 1).sum()
            total += (recall - previous_recall) * precision
            previous_recall = recall
        return total

    expected = [brute(scores[:, c], labels[:, c]) for c in range(6) if labels[:, c].any()]
    assert mean_ap(scores, labels) == pytest.approx(float(np.mean(expected)), abs=1e-12)


def test_max_ensemble_takes_the_elementwise_maximum_per_video():
    scores = torch.tensor([[0.1, 0.9], [0.5, 0.2], [0.3, 0.3], [0.0, 0.4]])
    video = torch.tensor([0, 0, 1, 1])
    out = max_ensemble(scores, video, 3)
    assert torch.equal(out[:2], torch.tensor([[0.5, 0.9], [0.3, 0.4]]))
    assert torch.all(out[2] == -1e10)  # a video without views keeps the start value


def test_mean_ap_equals_the_references_sklearn_computation():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    scores = np.round(rng.random((50, 8)), 1)  # rounded: ties
    labels = (rng.random((50, 8)) < 0.25).astype(int)
    labels[:, 3] = 0  # a class without positives
    # PySlowFast get_map: drop all-zero columns, sklearn AP per class, mean
    keep = ~np.all(labels == 0, axis=0)
    expected = np.mean(
        metrics.average_precision_score(labels[:, keep], scores[:, keep], average=None)
    )
    assert mean_ap(scores, labels) == pytest.approx(expected, abs=1e-12)
