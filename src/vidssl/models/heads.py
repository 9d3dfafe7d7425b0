"""Heads on top of a video backbone: the contrastive projection encoder and a linear classifier.

`ProjectionHead` is CoCLR's MLP written as 1×1×1 convolutions (``Conv3d(F, H, 1) → ReLU →
Conv3d(H, D, 1)``), applied to the globally pooled feature map, so its weights have the
reference's 5-D shapes (``encoder_q.2.weight (1024, 1024, 1, 1, 1)`` there, ``head.0.weight``
here). `ProjectionEncoder` chains backbone → global average pool → head → L2 normalisation, the
``encoder_q`` / ``encoder_k`` of every momentum-contrast method. `ClassifierHead` is CoCLR's
``LinearClassifier`` head: ``[L2-norm] → [final_bn] → [Dropout] → final_fc`` with the reference's
key names (``final_bn.*``, ``final_fc.0.*`` or ``final_fc.1.*`` after a dropout).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidssl.models.backbones import VideoBackbone


class ProjectionHead(nn.Sequential):
    """Two-layer MLP as 1×1×1 convolutions on a pooled ``B×F×1×1×1`` feature.

    Keys: ``0.weight [hidden, F, 1, 1, 1]``, ``0.bias``, ``2.weight [out, hidden, 1, 1, 1]``,
    ``2.bias`` (module 1 is the ReLU), the layout of CoCLR's ``encoder_q.2`` / ``encoder_q.4``.

    Args:
        in_dim: Backbone feature size ``F``.
        hidden_dim: Hidden width (CoCLR: ``F``).
        out_dim: Embedding size (CoCLR: 128).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__(
            nn.Conv3d(in_dim, hidden_dim, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden_dim, out_dim, kernel_size=1),
        )
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim


class ProjectionEncoder(nn.Module):
    """Backbone → global average pool → `ProjectionHead` → L2-normalised embedding.

    State-dict keys are ``backbone.<backbone key>`` and ``head.{0,2}.{weight,bias}``.

    Args:
        backbone: A `VideoBackbone` without classifier (`forward_map` gives ``B×F×t×h×w``).
        hidden_dim: Hidden width of the head; None means the backbone's ``feature_dim``.
        out_dim: Embedding size.
    """

    def __init__(
        self, backbone: VideoBackbone, hidden_dim: int | None = None, out_dim: int = 128
    ) -> None:
        super().__init__()
        if backbone.num_classes is not None:
            raise ValueError("ProjectionEncoder needs a backbone built without num_classes")
        self.backbone = backbone
        feature_dim = backbone.feature_dim
        self.head = ProjectionHead(feature_dim, hidden_dim or feature_dim, out_dim)

    @property
    def out_dim(self) -> int:
        """Embedding size."""
        return self.head.out_dim

    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        """Un-normalised embeddings ``B×out_dim`` (in the autocast dtype, if any)."""
        pooled = F.adaptive_avg_pool3d(self.backbone.forward_map(clips), 1)
        return self.head(pooled).flatten(1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 embeddings ``B×out_dim`` of clips ``B×C×T×H×W``."""
        return F.normalize(self.embed(clips).float(), dim=1)


class ClassifierHead(nn.Module):
    """CoCLR's linear-classifier head on pooled backbone features.

    ``forward(features)`` returns logits of ``[L2-normalise] → [final_bn] → [Dropout] →
    final_fc``. Keys: ``final_bn.*`` (BatchNorm1d, when ``batch_norm``) and ``final_fc.0.*``
    (the Linear), or ``final_fc.1.*`` when a dropout precedes it, as in the reference.

    Args:
        in_dim: Feature size.
        num_classes: Number of classes.
        dropout: Dropout probability before the linear layer (CoCLR fine-tuning: 0.9; 0 = none).
        l2_norm: L2-normalise the features first (CoCLR linear probe).
        batch_norm: BatchNorm1d on the features before the linear layer (CoCLR ``final_bn``,
            weight 1 and bias 0 at init).
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        *,
        dropout: float = 0.0,
        l2_norm: bool = False,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.l2_norm = l2_norm
        self.final_bn = nn.BatchNorm1d(in_dim) if batch_norm else None
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
        self.final_fc = nn.Sequential(*layers, nn.Linear(in_dim, num_classes))

    @property
    def linear(self) -> nn.Linear:
        """The final linear layer."""
        return self.final_fc[-1]  # type: ignore[return-value]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``B×num_classes`` for pooled features ``B×in_dim``."""
        if self.l2_norm:
            features = F.normalize(features, dim=1)
        if self.final_bn is not None:
            features = self.final_bn(features)
        return self.final_fc(features)
