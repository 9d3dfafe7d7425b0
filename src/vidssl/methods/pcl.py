"""PCL(VCP): the video-cloze pretext plus memory-bank contrast of the tuple's outer clips.

As BestJuly's ``train_vcp_contrast.py`` (Tao et al., "Pretext-Contrastive Learning"):

- a tuple of 3 clips (`vidssl.data.vcp_tuples`); the middle clip gets the sample's cloze
  operation (`vidssl.methods.cloze.apply_cloze`, batched on the device), then every clip becomes
  a residual clip (``method.residual``; PCL: ``roll(x, 1, T) − x`` on the normalised clip, *after*
  the cloze operation as in the reference);
- the shared backbone encodes each clip (one forward per clip position, as the reference);
  ``head = Linear(3·F, 5)`` on the concatenated features → cross-entropy on the cloze class;
- clips 1 and 3 only are projected (``Linear(F, 512) → ReLU → Linear(512, 128)`` → L2) and
  contrasted against two memory banks ``[N, 128]`` (clip-1 and clip-3 embeddings of every
  video): f1 against the clip-3 bank and f3 against the clip-1 bank, ``K = 1024`` uniform
  negatives with column 0 the video itself, ``τ = 0.07``
  (`vidssl.methods.losses.memory_bank_nce`); the banks then move to the new embeddings with
  momentum 0.5 and are renormalised (`vidssl.methods.memory_bank`);
- ``L = CE + w_con·(NCE₁ + NCE₂)``, ``w_con = 0.5``. ``w_con = 0`` is VCP alone: no projection
  head and no banks are built (`vidssl.methods.vcp` registers it with VCP's defaults).

The banks are buffers (``bank_clip1``, ``bank_clip3``: in every checkpoint), sized from the
training data by `attach_data` and initialised from ``trainer.seed``, so all DDP ranks start
equal; each step every rank applies the update with all ranks' embeddings and indices.

Validation (``method.val_split``, default ``test``): the cloze cross-entropy on that split's
tuples, made with the training transforms and seeded per item (the reference's ``val`` loader
reads the test-split videos, without their labels); logged as ``val/loss`` each epoch, which
``schedule.plateau_monitor`` can step a ``ReduceLROnPlateau`` on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vidssl.config.schema import Config, MethodConfig
from vidssl.data.transforms.ops import residual
from vidssl.data.vcp_tuples import CLOZE_CLASSES, build_tuple_dataset
from vidssl.errors import ConfigError
from vidssl.methods.base import BaseMethod
from vidssl.methods.cloze import apply_cloze
from vidssl.methods.losses import memory_bank_nce
from vidssl.methods.memory_bank import draw_bank_indices, init_bank, update_bank_gathered
from vidssl.methods.registry import register_method
from vidssl.models import build_backbone

__all__ = ["PCL", "PCLConfig"]


@dataclass
class PCLConfig(MethodConfig):
    """PCL(VCP) settings (reference defaults).

    Attributes:
        w_con: Weight of the two memory-bank NCE terms (0: VCP alone, no head, no banks).
        negatives: Bank rows drawn per sample as negatives (``K``).
        temperature: NCE temperature ``τ``.
        bank_momentum: Bank update momentum ``m`` (``bank ← normalise(m·bank + (1−m)·f)``).
        proj_hidden_dim: Hidden width of the projection MLP.
        proj_dim: Embedding (and bank) width.
        residual: Residual mode applied inside the method after the cloze operation (``pcl``:
            ``roll − x`` on normalised clips; ``vcp``: ``((roll − x) + 1)/2`` on [0, 1] clips;
            ``iic``; ``none`` for RGB).
        strong_aug: PCL's strong per-clip augmentation with ImageNet normalisation; false is
            VCP's resize + crop on [0, 1].
        reference_stride: Clip ``i`` at ``start + i·(tuple_len + interval)`` (the references'
            11-frame stride) instead of ``i·(seq_len + interval)``.
        interval: Frames between tuple clips.
        tuple_len: Clips per tuple (odd; the middle one gets the cloze operation).
        remote_distance: Least gap in frames between the tuple and its remote clip.
        val_split: Split whose tuples give ``val/loss`` each epoch (``""``: no validation).
    """

    name: str = "pcl"
    w_con: float = 0.5
    negatives: int = 1024
    temperature: float = 0.07
    bank_momentum: float = 0.5
    proj_hidden_dim: int = 512
    proj_dim: int = 128
    residual: Literal["none", "pcl", "vcp", "iic"] = "pcl"
    strong_aug: bool = True
    reference_stride: bool = False
    interval: int = 8
    tuple_len: int = 3
    remote_distance: int = 16
    val_split: str = "test"


@register_method("pcl")
class PCL(BaseMethod):
    """Video cloze + cross-view memory-bank contrast (see the module docstring)."""

    config_class = PCLConfig

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """Residual clips are made here (after the cloze op), not by the data; sizes fit the ops."""
        m, d = cfg.method, cfg.data
        if d.residual != "none":
            raise ConfigError(
                f"data.residual={d.residual!r} with method {m.name}: set method.residual instead "
                "(the residual is taken after the cloze operation)"
            )
        if d.seq_len % 4:
            raise ConfigError(f"data.seq_len={d.seq_len} is not divisible by 4 (chunk swap)")
        if d.img_size % 2:
            raise ConfigError(f"data.img_size={d.img_size} is not even (quadrant permutation)")
        if m.tuple_len < 3 or m.tuple_len % 2 == 0:
            raise ConfigError(f"method.tuple_len={m.tuple_len} is not an odd int >= 3")
        if m.w_con < 0 or not 0 <= m.bank_momentum < 1 or m.negatives < 1:
            raise ConfigError(
                "method.w_con must be >= 0, method.bank_momentum in [0, 1), method.negatives >= 1"
            )
        if d.modality != "rgb" or d.flow_media:
            raise ConfigError(f"method {m.name} trains on RGB clips (data.modality=rgb, no flow)")

    @classmethod
    def build_datasets(cls, cfg: Config) -> tuple[Any, Any]:
        """Training tuples of ``data.split`` and validation tuples of ``method.val_split``."""
        m = cfg.method
        options = {
            "interval": m.interval,
            "tuple_len": m.tuple_len,
            "remote_distance": m.remote_distance,
            "reference_stride": m.reference_stride,
            "strong": m.strong_aug,
        }
        train = build_tuple_dataset(cfg.data, cfg.data.split, **options)
        val = build_tuple_dataset(cfg.data, m.val_split, **options) if m.val_split else None
        return train, val

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        m, model = cfg.method, cfg.model
        self.backbone = build_backbone(
            model.backbone, in_channels=model.in_channels, width_mult=model.width_mult
        )
        features = int(self.backbone.feature_dim)
        self.head = nn.Linear(m.tuple_len * features, len(CLOZE_CLASSES))
        self.contrast = m.w_con > 0
        if self.contrast:
            self.projector = nn.Sequential(
                nn.Linear(features, m.proj_hidden_dim),
                nn.ReLU(inplace=True),
                nn.Linear(m.proj_hidden_dim, m.proj_dim),
            )
            self.register_buffer("bank_clip1", torch.zeros(0, m.proj_dim))
            self.register_buffer("bank_clip3", torch.zeros(0, m.proj_dim))

    # ---------------------------------------------------------------------------- data
    def attach_data(self, dataset: Any) -> None:
        """Sizes the banks to the training set (``trainer.seed`` draws their initial values)."""
        if not self.contrast:
            return
        size, dim = len(dataset), self.cfg.method.proj_dim
        seed = self.cfg.trainer.seed
        device = self.bank_clip1.device
        self.bank_clip1 = init_bank(size, dim, seed).to(device)
        self.bank_clip3 = init_bank(size, dim, seed + 1).to(device)

    def encoder_input(self) -> dict[str, Any]:
        """What the exported backbone was fed: the residual mode and the normalisation."""
        m = self.cfg.method
        return {
            "residual": None if m.residual == "none" else m.residual,
            "normalization": "imagenet" if m.strong_aug else "none",
        }

    # ---------------------------------------------------------------------------- steps
    def clip_features(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        """Backbone features of the tuple's clips after the cloze op and the residual."""
        m = self.cfg.method
        views = batch["views"]
        clips = list(views[: m.tuple_len])
        middle = m.tuple_len // 2
        clips[middle] = apply_cloze(
            views[middle], views[m.tuple_len], batch["cloze_label"], batch["rot_k"], batch["swap"]
        )
        if m.residual != "none":
            clips = [residual(clip, m.residual) for clip in clips]
        return [self.backbone(clip) for clip in clips]

    def cloze_logits(self, features: list[torch.Tensor]) -> torch.Tensor:
        """``[B, 5]`` cloze logits from the concatenated clip features."""
        return self.head(torch.cat(features, dim=1))

    def contrast_terms(
        self, features: list[torch.Tensor], index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two NCE terms (f1 vs the clip-3 bank, f3 vs the clip-1 bank); updates the banks."""
        m = self.cfg.method
        if self.bank_clip1.shape[0] == 0:
            raise ConfigError("PCL banks are empty: call attach_data(train_data) before training")
        f1 = F.normalize(self.projector(features[0]), dim=1)
        f3 = F.normalize(self.projector(features[-1]), dim=1)
        rows = draw_bank_indices(index, self.bank_clip1.shape[0], m.negatives)
        nce_1 = memory_bank_nce(f1, self.bank_clip3, rows, m.temperature)
        nce_3 = memory_bank_nce(f3, self.bank_clip1, rows, m.temperature)
        update_bank_gathered(self.bank_clip1, index, f1, m.bank_momentum)
        update_bank_gathered(self.bank_clip3, index, f3, m.bank_momentum)
        return nce_1, nce_3

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """``CE + w_con·(NCE₁ + NCE₂)`` (CE alone without contrast)."""
        features = self.clip_features(batch)
        logits = self.cloze_logits(features)
        labels = batch["cloze_label"].long()
        cloze = F.cross_entropy(logits, labels)
        out: dict[str, Any] = {
            "loss_cloze": cloze.detach(),
            "cloze_acc": (logits.argmax(1) == labels).float().mean().detach(),
        }
        loss = cloze
        if self.contrast:
            nce_1, nce_3 = self.contrast_terms(features, batch["index"].long())
            loss = cloze + self.cfg.method.w_con * (nce_1 + nce_3)
            out.update(loss_nce_1=nce_1.detach(), loss_nce_3=nce_3.detach())
        out["loss"] = loss
        return out

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """The cloze cross-entropy on validation tuples, logged as ``val/loss`` (epoch mean)."""
        logits = self.cloze_logits(self.clip_features(batch))
        loss = F.cross_entropy(logits, batch["cloze_label"].long())
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(logits))
        return loss
