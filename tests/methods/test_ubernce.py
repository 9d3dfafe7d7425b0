from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tests.methods.moco_helpers import (
    KeySpy,
    TwoViewVideos,
    independent_q_k,
    moco_config,
    two_view_batch,
)

from vidssl.errors import ConfigError
from vidssl.methods import losses
from vidssl.methods.registry import build_method, load_config
from vidssl.methods.ubernce import UberNCE, class_positive_mask
from vidssl.train.engine import fit


def ubernce_method() -> UberNCE:
    method = build_method(moco_config("ubernce"))
    with torch.no_grad():
        for param in method.encoder_q.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return method


def test_positive_mask_is_the_instance_plus_filled_same_class_slots() -> None:
    labels = torch.tensor([1, 2, -1])
    queue_labels = torch.tensor([1, -1, 2, 1])
    assert class_positive_mask(labels, queue_labels).int().tolist() == [
        [1, 1, 0, 0, 1],
        [1, 0, 0, 1, 0],
        [1, 0, 0, 0, 0],  # an unlabelled query never matches empty (-1) slots
    ]


def test_label_queue_starts_empty_and_follows_the_keys() -> None:
    method = build_method(moco_config("ubernce"))
    assert method.queue.labels.tolist() == [-1] * 16
    assert "queue.labels" in method.state_dict() and "queue.groups" not in method.state_dict()
    spy = KeySpy(method)
    for step, labels in enumerate([[0, 1, 2, 3], [4, 5, 6, 7], [1, 1, 0, 0], [9, 8, 7, 6]]):
        method.contrastive_step(two_view_batch(seed=step, labels=labels))
    method.contrastive_step(two_view_batch(seed=9, labels=[5, 5, 5, 5]))
    assert method.queue.labels.tolist() == [5] * 4 + [4, 5, 6, 7, 1, 1, 0, 0, 9, 8, 7, 6]
    assert torch.equal(method.queue.keys[:4], spy.keys[4])
    assert int(method.queue.ptr) == 4


def test_step_equals_losses_ubernce_and_counts_any_positive_as_a_hit() -> None:
    method = ubernce_method()
    method.contrastive_step(two_view_batch(seed=0, labels=[0, 1, 2, 3]))  # fill slots 0-3
    batch = two_view_batch(seed=1, labels=[2, 7, 2, 0])
    q, k = independent_q_k(method, batch)
    with torch.no_grad():  # make slot 6 the best match of query 0 and label it with its class
        method.queue.keys[6] = q[0]
        method.queue.labels[6] = 2
    queue_keys, queue_labels = method.queue.keys.clone(), method.queue.labels.clone()
    out = method.contrastive_step(batch)
    expected = losses.ubernce(q, k, queue_keys, batch["label"], queue_labels, 0.07)
    torch.testing.assert_close(out["loss"], expected, rtol=1e-6, atol=1e-6)
    # independently: mean over positives of -log softmax, mean over the batch
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue_keys.T], dim=1) / 0.07
    positives = torch.zeros_like(logits, dtype=torch.bool)
    positives[:, 0] = True
    for row, label in enumerate(batch["label"].tolist()):
        for slot, slot_label in enumerate(queue_labels.tolist()):
            positives[row, 1 + slot] = slot_label == label
    per_row = [-F.log_softmax(r, 0)[p].mean() for r, p in zip(logits, positives)]
    torch.testing.assert_close(out["loss"], torch.stack(per_row).mean(), rtol=1e-5, atol=1e-6)
    assert positives[0].sum() == 3 and positives[1].sum() == 1  # class 2: slots 2 and 6
    assert logits[0].argmax() == 7 and logits[0, 0] < logits[0, 7]  # the class positive wins
    hits = [bool(positives[r, logits[r].argmax()]) for r in range(4)]
    assert hits[0] and out["top1"] == sum(hits) / 4
    top5 = [bool(positives[r, logits[r].topk(5).indices].any()) for r in range(4)]
    assert out["top5"] == sum(top5) / 4


def test_multi_label_batches_are_rejected() -> None:
    method = build_method(moco_config("ubernce"))
    batch = two_view_batch()
    batch["label"] = torch.zeros(4, 3, dtype=torch.long)
    with pytest.raises(ConfigError, match="one integer 'label' per clip"):
        method.contrastive_step(batch)


def test_preset_mirrors_the_cpr_seed_command() -> None:
    cfg = load_config("ubernce/ucf101_rgb")
    assert cfg.method.name == "ubernce" and cfg.method.queue_size == 2048
    assert (cfg.data.batch_size, cfg.data.seq_len, cfg.data.img_size) == (16, 32, 128)
    assert (cfg.schedule.milestones, cfg.trainer.epochs, cfg.optim.lr) == ([240], 300, 1e-3)
    tiny = load_config("ubernce/tiny")
    assert (tiny.trainer.accelerator, tiny.method.queue_size, tiny.data.batch_size) == (
        "cpu",
        64,
        4,
    )


def test_tiny_preset_trains_with_labels_on_cpu(tmp_path: Path) -> None:
    cfg = load_config("ubernce/tiny", [f"trainer.run_dir={tmp_path}", "trainer.max_steps=2"])
    method = build_method(cfg)
    fit(method, TwoViewVideos(8, frames=cfg.data.seq_len), cfg)
    labels = method.queue.labels.tolist()
    assert sorted(labels[:8]) == [0, 0, 0, 0, 1, 1, 1, 1] and labels[8:] == [-1] * 56
