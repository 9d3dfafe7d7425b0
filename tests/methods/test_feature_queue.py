"""`FeatureQueue`: ring-buffer slots, counts and the refusals of `enqueue`, by hand."""

from __future__ import annotations

import pytest
import torch

from vidssl.methods.moco import FeatureQueue


def _keys(*rows: float) -> torch.Tensor:
    return torch.tensor([[value, 0.0] for value in rows])


def test_writes_wrap_around_and_count_every_key():
    queue = FeatureQueue(4, 2, track_labels=True)
    queue.enqueue(_keys(1, 2, 3), labels=torch.tensor([10, 20, 30]))
    assert queue.ptr.item() == 3 and queue.fill_fraction().item() == 0.75
    queue.enqueue(_keys(4, 5), labels=torch.tensor([40, 50]))
    # slots 3, 0 get keys 4, 5: [5, 2, 3, 4]
    assert queue.keys[:, 0].tolist() == [5, 2, 3, 4]
    assert queue.labels.tolist() == [50, 20, 30, 40]
    assert (queue.ptr.item(), queue.count.item(), queue.fill_fraction().item()) == (1, 5, 1.0)


@pytest.mark.parametrize(
    ("keys", "extra", "message"),
    [
        (torch.zeros(5, 2), {}, r"cannot enqueue \(5, 2\) into a queue of 4×2"),
        (torch.zeros(2, 3), {}, r"cannot enqueue \(2, 3\) into a queue of 4×2"),
        (torch.zeros(2, 2), {}, r"queue tracks groups: pass groups of shape \[2\]"),
        (
            torch.zeros(2, 2),
            {"groups": torch.zeros(3, dtype=torch.long)},
            r"queue tracks groups: pass groups of shape \[2\]",
        ),
    ],
)
def test_enqueue_refuses_what_does_not_fit(keys, extra, message):
    queue = FeatureQueue(4, 2, track_groups=True)
    before = queue.keys.clone()
    with pytest.raises(ValueError, match=message):
        queue.enqueue(keys, **extra)
    assert queue.ptr.item() == 0 and queue.count.item() == 0
    if "cannot enqueue" in message:
        assert torch.equal(queue.keys, before)


def test_untracked_labels_are_ignored():
    queue = FeatureQueue(3, 2)
    queue.enqueue(_keys(7), labels=torch.tensor([1]))
    assert queue.labels is None and queue.keys[0, 0].item() == 7
