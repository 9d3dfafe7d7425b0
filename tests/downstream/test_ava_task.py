"""The AVA task: train-item seeding, the training loss by hand, box predictions in order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidssl.data.synthetic.ava import make_synthetic_ava
from vidssl.downstream.ava.task import AvaTask, TrainKeyframes, load_ava_config, predict_boxes
from vidssl.methods.registry import build_method
from vidssl.train.loader import SeededItems


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_ava")
    make_synthetic_ava(root, train_videos=2, val_videos=1, keyframes=3)
    return load_ava_config("tiny", [f"data.root={root}"])


def test_train_items_follow_the_loaders_seed(cfg):
    train, _ = AvaTask().datasets(cfg)
    assert isinstance(train, TrainKeyframes)
    items = SeededItems(train, 0)
    first, again = items[(0, 11)], items[(0, 11)]
    assert torch.equal(first["clip"], again["clip"]) and torch.equal(first["boxes"], again["boxes"])
    assert first["clip"].shape == (3, 8, 32, 32)
    boxes = {tuple(items[(0, seed)]["boxes"].flatten().tolist()) for seed in range(20)}
    assert len(boxes) > 1  # another (epoch, position) seed, another jitter/crop/flip draw
    for seed in range(20):
        b = items[(0, seed)]["boxes"]
        assert torch.all(b >= 0) and torch.all(b <= 31) and torch.all(b[:, 2:] >= b[:, :2])
    assert train.failures() == 0 and train.failed_videos() == []


def test_training_loss_is_the_mean_binary_cross_entropy_by_hand(cfg):
    module = build_method(cfg)
    logits = torch.zeros(2, 80)
    logits[1, 6] = math.log(3.0)  # sigmoid = 0.75
    labels = torch.zeros(2, 80)
    labels[1, 6] = 1.0
    labels[0, 0] = 1.0  # sigmoid(0) = 0.5 either way
    expected = (159 * math.log(2.0) - math.log(0.75)) / 160
    loss = module.task_loss(logits, {"labels": labels})
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_box_predictions_come_in_dataset_order_with_their_keys(cfg):
    _, test = AvaTask().datasets(cfg)
    module = build_method(cfg).eval()
    videos, seconds, boxes, scores = predict_boxes(module, test, cfg)
    items = [test[i] for i in range(len(test))]
    assert videos == [item["video"] for item in items for _ in range(len(item["boxes"]))]
    assert seconds.tolist() == [item["second"] for item in items for _ in item["boxes"]]
    np.testing.assert_array_equal(boxes, torch.cat([item["ori_boxes"] for item in items]).numpy())
    assert scores.shape == (len(boxes), 80) and np.all((scores > 0) & (scores < 1))
    with torch.no_grad():  # the first keyframe alone gives the same scores (batch independent)
        item = items[0]
        rows = torch.cat([torch.zeros(len(item["boxes"]), 1), item["boxes"]], dim=1)
        alone = torch.sigmoid(module(item["clip"][None], rows)).numpy()
    np.testing.assert_allclose(scores[: len(alone)], alone, atol=1e-6)
