"""UberNCE: the supervised upper bound of CoCLR (``main_nce.py --model ubernce``).

The InfoNCE machinery (query/momentum encoders, queue, batch shuffle) with a label queue: every
queue entry of the query's class is a positive besides its own key,
``P = {0} ∪ {j : queue_label_j = label}``, and the loss is the mean log-likelihood over the
positives, ``−(1/|P|) Σ_{p∈P} log softmax([q·k | q·queue] / τ)_p``
(`vidssl.methods.losses.ubernce`). The label queue starts at −1, and empty slots are never
positives. Top-k accuracy counts a hit when any positive is among the top-k logits (the
reference's ``calc_mask_accuracy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vidssl.config.schema import Config
from vidssl.methods.losses import multi_positive_nce
from vidssl.methods.moco import (
    ContrastiveTerms,
    MomentumContrastConfig,
    MomentumContrastMethod,
    QueueSnapshot,
)
from vidssl.methods.registry import register_method


@dataclass
class UberNCEConfig(MomentumContrastConfig):
    """UberNCE settings (CoCLR defaults); the batch must carry one class id per clip."""

    name: str = "ubernce"


def class_positive_mask(labels: torch.Tensor, queue_labels: torch.Tensor) -> torch.Tensor:
    """Bool ``[B, 1+K]``: column 0 (the instance key) and the filled queue slots of each class."""
    same_class = (labels[:, None] == queue_labels[None, :]) & (queue_labels[None, :] >= 0)
    instance = torch.ones_like(same_class[:, :1])
    return torch.cat([instance, same_class], dim=1)


@register_method("ubernce")
class UberNCE(MomentumContrastMethod):
    """Supervised contrastive learning against a labelled momentum queue."""

    config_class = UberNCEConfig

    @classmethod
    def queue_tracking(cls, cfg: Config) -> tuple[bool, bool]:
        """The queue keeps each key's class label."""
        return True, False

    def contrastive_loss(
        self,
        logits: torch.Tensor,
        batch: dict[str, Any],
        labels: torch.Tensor | None,
        groups: torch.Tensor | None,
        queue: QueueSnapshot,
    ) -> ContrastiveTerms:
        """Mean log-likelihood over the instance key and the same-class queue entries."""
        assert labels is not None and queue.labels is not None  # tracked by queue_tracking
        positives = class_positive_mask(labels, queue.labels)
        return ContrastiveTerms(multi_positive_nce(logits, positives, "mean"), logits, positives)
