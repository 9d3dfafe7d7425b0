import numpy as np
import pytest
import torch

from vidssl.eval.config import LinearSettings
from vidssl.eval.linear import (
    epoch_lr_factor,
    fused_topk_accuracy,
    mean_probabilities,
    topk_accuracy,
    train_linear_probe,
)


def separable(n_per_class: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Three classes along three directions (plus noise): linearly separable after L2."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(3, 8) * 4.0
    labels = np.repeat(np.arange(3), n_per_class)
    feats = centres[labels] + 0.3 * torch.randn(len(labels), 8, generator=g)
    return feats, labels


def test_probe_separates_linearly_separable_features():
    feats, labels = separable(30, 0)
    settings = LinearSettings(epochs=20, milestones=[12, 16], batch_size=16)
    probe, lrs = train_linear_probe(feats, labels, 3, settings, seed=0)
    test_feats, test_labels = separable(20, 1)
    with torch.no_grad():
        probs = probe(test_feats).softmax(1)
    assert topk_accuracy(probs, test_labels)["top1"] == 1.0
    assert lrs[11] == pytest.approx(0.1) and lrs[12] == pytest.approx(0.01)
    assert lrs[16] == pytest.approx(0.001) and len(lrs) == 20


def test_default_schedule_decays_at_60_and_80():
    settings = LinearSettings()
    assert (settings.epochs, settings.lr, settings.weight_decay) == (100, 0.1, 1e-3)
    lrs = {e: settings.lr * epoch_lr_factor(settings, e) for e in (0, 59, 60, 79, 80, 99)}
    assert lrs[0] == pytest.approx(0.1) and lrs[59] == pytest.approx(0.1)
    assert lrs[60] == pytest.approx(0.01) and lrs[79] == pytest.approx(0.01)
    assert lrs[80] == pytest.approx(0.001) and lrs[99] == pytest.approx(0.001)


def test_probe_head_is_l2_then_batchnorm_then_linear():
    feats, labels = separable(4, 0)
    probe, _ = train_linear_probe(feats, labels, 3, LinearSettings(epochs=1), seed=0)
    scaled = probe(feats * 10.0)  # L2 first: the scale of the input does not matter
    torch.testing.assert_close(scaled, probe(feats))
    bn = probe.bn
    normed = torch.nn.functional.normalize(feats, dim=1)
    by_hand = (normed - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight
    torch.testing.assert_close(probe(feats), probe.fc(by_hand + bn.bias))


def test_softmax_is_averaged_per_video_over_windows():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    probs, rows = mean_probabilities(logits, np.array([4, 4, 7]))
    assert rows.tolist() == [4, 7]
    p = 1 / (1 + np.exp(-2.0))
    torch.testing.assert_close(probs[0], torch.tensor([(0.5 + p) / 2, (0.5 + 1 - p) / 2]).float())
    q = 1 / (1 + np.exp(-1.0))
    torch.testing.assert_close(probs[1], torch.tensor([1 - q, q]).float())
    acc = topk_accuracy(probs, np.array([0, 0]), ks=(1, 2))
    assert acc == {"top1": 0.5, "top2": 1.0}


def test_fused_accuracy_averages_common_videos_with_the_first_streams_labels():
    rgb = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    flow = torch.tensor([[0.1, 0.9], [0.5, 0.5]])
    first = (rgb, np.array(["a", "b", "c"]), np.array([0, 1, 0]))
    second = (flow, np.array(["c", "a"]), np.array([9, 9]))  # labels of the 2nd stream unused
    # a: (0.9 + 0.5) / 2 = 0.7 -> class 0 (label 0, hit); c: (0.6 + 0.1) / 2 = 0.35 -> class 1
    # (label 0, miss); b is scored by one stream only and left out.
    assert fused_topk_accuracy(first, second) == {"top1": 0.5, "top5": 1.0, "videos": 2}
