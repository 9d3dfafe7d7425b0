"""InfoNCE: MoCo for video, as CoCLR's ``main_nce.py --model infonce`` (RGB or flow alike).

Clip 1 of a video (``batch["views"][0]``) is the query, clip 2 (``views[1]``) encoded by the
momentum encoder is its positive key, the queue holds the negatives:
``L = CE([q·k | q·queue] / τ, 0)`` (`vidssl.methods.losses.infonce`), with ``τ = 0.07``,
``K = 2048`` (16384 on Kinetics-400) and momentum 0.999. The modality is only the input: a flow
run reads flow frames (3-channel JPEGs) with ``model.in_channels=3`` exactly like RGB.

``method.mask_siblings=true`` (off in CoCLR's InfoNCE) removes queue entries of the query's own
source group from its softmax: UCF101 clips ``v_X_gNN_c*`` cut from one source video, taken from
``batch["group"]`` (or the video index ``batch["index"]`` when a dataset has no groups, so that
earlier clips of the same video are masked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from vidssl.config.schema import Config
from vidssl.methods.mining import sibling_mask
from vidssl.methods.moco import (
    ContrastiveTerms,
    MomentumContrastConfig,
    MomentumContrastMethod,
    QueueSnapshot,
)
from vidssl.methods.registry import register_method

log = logging.getLogger(__name__)


@dataclass
class InfoNCEConfig(MomentumContrastConfig):
    """InfoNCE settings (CoCLR defaults).

    Attributes:
        mask_siblings: Remove same-source-group queue entries from each query's negatives.
    """

    name: str = "infonce"
    mask_siblings: bool = False


def mask_negatives(logits: torch.Tensor, negative_mask: torch.Tensor) -> torch.Tensor:
    """Sets ``logits[:, 1:]`` to −inf where ``negative_mask [B, K]`` is true (column 0 stays)."""
    keep_positive = torch.zeros_like(negative_mask[:, :1])
    return logits.masked_fill(torch.cat([keep_positive, negative_mask], dim=1), float("-inf"))


@register_method("infonce")
class InfoNCE(MomentumContrastMethod):
    """Instance discrimination against a momentum queue (MoCo v2 on clips, CoCLR InfoNCE)."""

    config_class = InfoNCEConfig

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self._warned_no_group = False

    @classmethod
    def queue_tracking(cls, cfg: Config) -> tuple[bool, bool]:
        """Groups are kept only for sibling masking."""
        return False, bool(cfg.method.mask_siblings)

    def queue_metadata(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Source groups of the batch (``group``, else the video ``index``) when masking."""
        if not self.track_groups:
            return None, None
        if "group" in batch:
            return None, self.batch_ids(batch, "group")
        if not self._warned_no_group:
            log.info("batches carry no 'group': masking earlier clips of the same video instead")
            self._warned_no_group = True
        return None, self.batch_ids(batch, "index")

    def contrastive_loss(
        self,
        logits: torch.Tensor,
        batch: dict[str, Any],
        labels: torch.Tensor | None,
        groups: torch.Tensor | None,
        queue: QueueSnapshot,
    ) -> ContrastiveTerms:
        """Cross-entropy with target 0 (siblings masked out when enabled); column 0 positive."""
        if groups is not None and queue.groups is not None:
            logits = mask_negatives(logits, sibling_mask(groups, queue.groups))
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        positives = torch.zeros_like(logits, dtype=torch.bool)
        positives[:, 0] = True
        return ContrastiveTerms(F.cross_entropy(logits, target), logits, positives)
