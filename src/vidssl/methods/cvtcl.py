"""CVTCL: CoCLR's two stages with extra sub-clip ("local") losses (``wangll1212/CVTCL``).

Each 32-frame clip is also cut into ``num_subclips`` (4) consecutive sub-clips of 8 frames.
With ``q_11 = encoder_q(sub-clip 1 of clip 1)`` and ``k_2j = encoder_k(sub-clip j of clip 2)``:

- ``L_inter`` (`local_inter_nce`): every ``k_2j`` is a positive of ``q_11`` against the global
  queue (which only ever holds whole-clip keys);
- ``L_intra`` (`local_intra_nce`): ``k_21`` (the aligned sub-clip) against ``k_22 … k_2S``.

Two registered methods share these terms:

- ``cvtcl_local`` (``local_nce.py``): InfoNCE on the whole clips plus the local terms,
  ``L = L_global + L_inter/3 + L_intra``, τ = 0.1 (preset: constant lr 5e-4 from epoch 0, as
  the reference trains; its intended warm-up [0.01, 0.05, 0.1, 0.5, 1] is an option);
- ``cvtcl`` (``main_cvtcl.py``, cross-view stage): CoCLR (mining, siblings, instance drop,
  queue warm-up, ``reverse``, ``pretrain: [A, B]``) plus the local terms on the trained stream,
  ``L = (L_CoCLR + L_inter + L_intra)/3``, τ = 0.07.

**Inferred, not published.** CVTCL's data loader (``dataset/local_dataset.py``) and the model
file of its local stage (``model/pretrain.py``, only a ``.pyc`` exists) are missing from the
repository. From tensor shapes and comments, the sub-clips are taken to be the consecutive
equal temporal segments of each sampled clip, the query is the first sub-clip of view 1 and the
aligned key the first sub-clip of view 2.

**Sub-clip augmentation.** ``main_cvtcl.py`` imports ``utils/augmentation_local.py``, whose
``len(x) == 32`` branch takes sub-clip j of view 1 and of view 2 (two 16-frame blocks of 8 RGB +
8 flow frames, one draw per block, so RGB and flow share it) and runs CoCLR's
``TransformController`` on that pair: every sub-clip pair gets its own TwoClip/OneClip choice,
crop, jitter and flip, and under OneClip both views are the same frames.
With ``data.subclip_views = num_subclips`` (the cross-view presets) the batch carries those
pairs (`vidssl.data.datasets.MultiViewDataset`) and the local terms use them; with
``data.subclip_views = 0`` (the local-stage presets, and an option for the cross-view stage) the
sub-clips are cut out of the already augmented whole-clip views.

**Fixed bug.** The reference's CoCLR-stage forward batch-shuffles the
sub-clips but encodes the unshuffled tensor, so after unshuffling the sub-clip keys belong to
other videos; here every sub-clip is shuffled, encoded and unshuffled properly
(`MomentumContrastMethod.encode_keys`), so ``k_2j`` is always the key of the query's video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vidssl.config.schema import Config
from vidssl.errors import ConfigError
from vidssl.methods.coclr import CoCLR, CoCLRConfig
from vidssl.methods.infonce import InfoNCE, InfoNCEConfig
from vidssl.methods.losses import local_inter_nce, local_intra_nce
from vidssl.methods.moco import QueueSnapshot
from vidssl.methods.registry import register_method


@dataclass
class LocalTermsConfig:
    """Sub-clip loss settings shared by both CVTCL stages.

    Attributes:
        num_subclips: Consecutive sub-clips per clip (``data.seq_len`` must divide evenly).
        global_weight: Weight of the whole-clip loss (InfoNCE or CoCLR).
        inter_weight: Weight of ``L_inter``.
        intra_weight: Weight of ``L_intra``.
    """

    num_subclips: int = 4
    global_weight: float = 1.0
    inter_weight: float = 1.0 / 3.0
    intra_weight: float = 1.0


def split_subclips(clips: torch.Tensor, n: int) -> list[torch.Tensor]:
    """``n`` consecutive equal temporal segments of ``B×C×T×H×W`` clips (``T % n == 0``)."""
    frames = clips.shape[2]
    if n < 1 or frames % n:
        raise ValueError(f"cannot split {frames} frames into {n} equal sub-clips")
    return list(clips.split(frames // n, dim=2))


class LocalTermsMixin:
    """Adds CVTCL's sub-clip losses to a `MomentumContrastMethod` through `extra_terms`."""

    cfg: Config

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """The base method's checks, then `check_local_config`."""
        super().validate_config(cfg)  # type: ignore[misc]
        cls.check_local_config(cfg)

    @classmethod
    def check_local_config(cls, cfg: Config) -> None:
        """Raises `ConfigError` when the clips cannot be cut into the sub-clips."""
        m, frames = cfg.method, cfg.data.seq_len
        if m.num_subclips < 2 or frames % m.num_subclips:
            raise ConfigError(
                f"method.num_subclips={m.num_subclips} must be ≥ 2 and divide "
                f"data.seq_len={frames} (consecutive equal sub-clips)"
            )
        if cfg.data.subclip_views not in (0, m.num_subclips):
            raise ConfigError(
                f"data.subclip_views={cfg.data.subclip_views} must be 0 (cut the augmented "
                f"clips) or method.num_subclips={m.num_subclips} (a draw per sub-clip pair)"
            )

    def subclip_pairs(self, batch: dict[str, Any]) -> list[list[torch.Tensor]] | None:
        """The trained stream's per-sub-clip view pairs, or None when the batch has none."""
        reverse = bool(getattr(self.cfg.method, "reverse", False))
        key = "subclip_flow_views" if reverse else "subclip_views"
        return batch.get(key)

    def local_losses(
        self,
        views: list[torch.Tensor],
        queue: torch.Tensor,
        pairs: list[list[torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L_inter, L_intra)`` of the trained stream's two clips against ``queue [K, D]``.

        Sub-clip ``j`` of view ``v`` is ``pairs[j][v]`` when given (a draw per sub-clip pair),
        else segment ``j`` of ``views[v]``. Call after this step's EMA update: the sub-clip keys
        use the key encoder as it is.
        """
        n, temperature = self.cfg.method.num_subclips, self.cfg.method.temperature
        if pairs is None:
            firsts, seconds = split_subclips(views[0], n), split_subclips(views[1], n)
        else:
            firsts, seconds = [p[0] for p in pairs], [p[1] for p in pairs]
        q_11 = self.encoder_q(firsts[0])  # type: ignore[attr-defined]
        keys = [self.encode_keys(sub) for sub in seconds]  # type: ignore[attr-defined]
        sub_keys = torch.stack(keys, dim=1)  # [B, S, D]
        inter = local_inter_nce(q_11, sub_keys, queue, temperature)
        intra = local_intra_nce(q_11, sub_keys, temperature, aligned_index=0)
        return inter, intra

    def extra_terms(
        self, outputs: dict[str, Any], batch: dict[str, Any], queue: QueueSnapshot
    ) -> dict[str, Any]:
        """``loss = w_g·loss + w_inter·L_inter + w_intra·L_intra`` (terms logged separately)."""
        m = self.cfg.method
        views = self.training_views(batch)  # type: ignore[attr-defined]
        inter, intra = self.local_losses(views, queue.keys, self.subclip_pairs(batch))
        global_loss = outputs["loss"]
        total = m.global_weight * global_loss + m.inter_weight * inter + m.intra_weight * intra
        return {
            **outputs,
            "loss": total,
            "loss_global": global_loss.detach(),
            "loss_inter": inter.detach(),
            "loss_intra": intra.detach(),
        }


@dataclass
class CVTCLLocalConfig(InfoNCEConfig, LocalTermsConfig):
    """CVTCL local-InfoNCE stage: ``L = L_global + L_inter/3 + L_intra`` at τ = 0.1."""

    name: str = "cvtcl_local"
    temperature: float = 0.1


@register_method("cvtcl_local")
class CVTCLLocal(LocalTermsMixin, InfoNCE):
    """InfoNCE on whole clips plus CVTCL's sub-clip losses (``local_nce.py``)."""

    config_class = CVTCLLocalConfig


@dataclass
class CVTCLConfig(CoCLRConfig, LocalTermsConfig):
    """CVTCL cross-view stage: ``L = (L_CoCLR + L_inter + L_intra)/3`` at τ = 0.07."""

    name: str = "cvtcl"
    global_weight: float = 1.0 / 3.0
    inter_weight: float = 1.0 / 3.0
    intra_weight: float = 1.0 / 3.0


@register_method("cvtcl")
class CVTCL(LocalTermsMixin, CoCLR):
    """CoCLR plus CVTCL's sub-clip losses on the trained stream (``main_cvtcl.py``)."""

    config_class = CVTCLConfig
