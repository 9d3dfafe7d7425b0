"""ViCC: cross-stream prototypical contrasting (Toering et al., WACV 2022), single and cross stream.

One network (``encoder_q``: backbone → pool → 2-layer 1×1×1-conv MLP → 128-d L2-norm) and 300
prototypes (``prototypes``, ``Linear(128, 300, bias=False)``, rows L2-renormalised before every
step) are trained with SwAV's swapped prediction (`vidssl.methods.prototypes`):

- **single stream** (``method.cross=false``, ``main_single.py``): views 0/1 = clip 1/clip 2 of
  one stream; ``L = ½[H(q₀, p₁) + H(q₁, p₀)]``;
- **cross stream** (``method.cross=true``, ``main_cross.py``, ``method.pretrain=[A, B]``): four
  views, all scored with the trained stream's prototypes: 0 = main clip 1, 1 = main clip 2,
  2 = frozen other stream on clip 2, 3 = frozen other stream on clip 1 (``second``: B's encoder,
  ``requires_grad=False``, always in eval mode); every view's code is predicted by the other
  three. ``method.reverse=true`` trains flow with the frozen RGB stream.

Codes are Sinkhorn-Knopp soft assignments (ε 0.05, 3 iterations, float32, marginals all-reduced
over ranks) of each assigned view's scores, computed under ``no_grad``; from epoch
``epoch_queue_starts`` on, each assigned view's embeddings are also pushed into a per-view FIFO
queue of this rank's embeddings (newest first, ``L = queue_size`` rounded down to a multiple of
the global batch, divided by the world size), whose scores against the current prototypes are
prepended to the view's scores once its last row is written. The ``queue`` buffer
``[views, world, L, D]`` holds every rank's queue (embeddings are gathered before the push), so
it is the same on all ranks, survives DDP's buffer broadcast and is saved whole in the Lightning
checkpoint (``resume=auto`` restores it; the world size must stay the same). Prototype gradients
are dropped for the first ``freeze_prototypes_nepochs`` epochs.

The second clip of the trained stream is encoded under ``no_grad`` with batch-shuffled BN (the
reference's released configs) unless ``method.second_clip_grad=true`` (the reference with
SyncBN: both clips back-propagate).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vidssl.config.schema import Config, MethodConfig
from vidssl.errors import ConfigError
from vidssl.methods.base import BaseMethod
from vidssl.methods.frozen_stream import check_frozen_augmentation
from vidssl.methods.moco import (
    batch_shuffle,
    batch_unshuffle,
    build_projection_encoder,
    concat_all_gather,
    rank_and_world,
)
from vidssl.methods.prototypes import code_agreement, sinkhorn, swapped_prediction_loss
from vidssl.methods.registry import register_method
from vidssl.models.checkpoints.adapters import strip_data_parallel
from vidssl.models.checkpoints.io import find_state_dict, read_checkpoint
from vidssl.models.checkpoints.projection import load_projection_encoder, resolve_checkpoint_path
from vidssl.models.heads import ProjectionEncoder

__all__ = ["ViCC", "ViCCConfig", "queue_length", "sinkhorn"]

log = logging.getLogger(__name__)

#: The frozen other-stream views of the cross stage (views 2 and 3).
FROZEN_VIEWS = (2, 3)


@dataclass
class ViCCConfig(MethodConfig):
    """ViCC settings (``main_single.py`` / ``main_cross.py`` flags in brackets).

    Attributes:
        cross: Cross-stream stage (4 views, frozen other stream) instead of single stream.
        pretrain: Cross stream: ``[A, B]``: A's encoder and prototypes initialise the trained
            stream, B's encoder becomes the frozen other stream (B's prototypes and all queues
            are ignored). Single stream: ``[]`` or ``[A]`` (initialisation only).
        reverse: Train the flow stream (``flow_views``) with the frozen RGB stream (``--reverse``).
        num_prototypes: Number of prototypes (``--nmb_prototypes``).
        temperature: Softmax temperature τ of the predictions (``--moco-t``).
        epsilon: Sinkhorn entropy ε (``--epsilon``).
        sinkhorn_iterations: Sinkhorn iterations (``--sinkhorn_iterations``).
        stabilize: Subtract the global maximum score before the exponential
            (``--improve_numerical_stability``).
        views_for_assign: Views whose codes are computed (``--views_for_assign``); empty = all.
        queue_size: Total queue length over all ranks (``--moco-k``), rounded down to a multiple
            of the global batch; 0 = no queue.
        epoch_queue_starts: First epoch that fills (and, once full, uses) the queue.
        freeze_prototypes_nepochs: Epochs during which the prototypes get no update.
        second_clip_grad: Back-propagate through the trained stream's second clip too (the
            reference with SyncBN); default: ``no_grad`` + batch-shuffle BN (released configs).
        trust_checkpoint: Allow arbitrary unpickling of the pretrain files (trusted files only).
    """

    name: str = "vicc"
    cross: bool = False
    pretrain: list[str] = field(default_factory=list)
    reverse: bool = False
    num_prototypes: int = 300
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    stabilize: bool = False
    views_for_assign: list[int] = field(default_factory=list)
    queue_size: int = 1920
    epoch_queue_starts: int = 150
    freeze_prototypes_nepochs: int = 100
    second_clip_grad: bool = False
    trust_checkpoint: bool = False


def queue_length(queue_size: int, batch_size: int, world_size: int) -> int:
    """Per-rank queue rows: ``queue_size`` rounded down to the global batch, over the ranks."""
    global_batch = batch_size * world_size
    return (queue_size // global_batch) * global_batch // world_size


@register_method("vicc")
class ViCC(BaseMethod):
    """ViCC single-stream or cross-stream swapped prediction with Sinkhorn codes."""

    config_class = ViCCConfig

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """Checks the pretrain list, the assigned views, the queue and the Sinkhorn settings."""
        m = cfg.method
        if m.cross and len(m.pretrain) != 2:
            raise ConfigError(
                f"method.pretrain has {len(m.pretrain)} entries; the cross stage expects [A, B]: "
                "the checkpoint of the stream to train and that of the frozen other stream"
            )
        if not m.cross and len(m.pretrain) > 1:
            raise ConfigError(
                f"method.pretrain has {len(m.pretrain)} entries; a single-stream run takes at "
                "most one (its initialisation); set method.cross=true for [A, B]"
            )
        views = 4 if m.cross else 2
        assign = m.views_for_assign or list(range(views))
        if len(set(assign)) != len(assign) or not all(0 <= v < views for v in assign):
            raise ConfigError(
                f"method.views_for_assign={m.views_for_assign} must list distinct views in "
                f"[0, {views - 1}]"
            )
        for key in ("num_prototypes", "sinkhorn_iterations"):
            if getattr(m, key) < 1:
                raise ConfigError(f"method.{key}={getattr(m, key)} is not a positive int")
        for key in ("temperature", "epsilon"):
            if not getattr(m, key) > 0:
                raise ConfigError(f"method.{key}={getattr(m, key)} is not a positive float")
        for key in ("queue_size", "epoch_queue_starts", "freeze_prototypes_nepochs"):
            if getattr(m, key) < 0:
                raise ConfigError(f"method.{key}={getattr(m, key)} is negative")
        if m.queue_size and m.queue_size < cfg.data.batch_size:
            raise ConfigError(
                f"method.queue_size={m.queue_size} is smaller than data.batch_size="
                f"{cfg.data.batch_size}; use 0 (no queue) or at least one global batch"
            )
        if cfg.data.num_views != 2:
            raise ConfigError(f"data.num_views={cfg.data.num_views}; ViCC uses 2 clips per video")

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        m, model = cfg.method, cfg.model
        self.encoder_q = build_projection_encoder(model)
        self.prototypes = nn.Linear(model.proj_dim, m.num_prototypes, bias=False)
        self.second: ProjectionEncoder | None = None
        if m.cross:
            self.second = copy.deepcopy(self.encoder_q)
            self.second.requires_grad_(False)
        self.assign_views = m.views_for_assign or list(range(4 if m.cross else 2))
        rows = queue_length(m.queue_size, cfg.data.batch_size, 1)
        shape = (len(self.assign_views), 1, rows, model.proj_dim)
        self.register_buffer("queue", torch.zeros(shape))
        self.load_pretrained(m.pretrain)
        if self.second is not None:
            self.second.eval()

    # ------------------------------------------------------------------------------ setup
    def setup(self, stage: str) -> None:
        """Sizes the queue for the world size (before Lightning restores a checkpoint)."""
        self.resize_queue(self.trainer.world_size)

    def resize_queue(self, world_size: int) -> None:
        """Re-creates the (empty) queue ``[views, world_size, queue_length(...), D]``."""
        m = self.cfg.method
        rows = queue_length(m.queue_size, self.cfg.data.batch_size, world_size)
        if m.queue_size and rows == 0:
            raise ConfigError(
                f"method.queue_size={m.queue_size} is smaller than the global batch "
                f"{self.cfg.data.batch_size * world_size}"
            )
        shape = (len(self.assign_views), world_size, rows, self.queue.shape[-1])
        if tuple(self.queue.shape) != shape:
            self.queue = self.queue.new_zeros(shape)

    def load_pretrained(self, paths: list[str]) -> None:
        """A's encoder and prototypes into the trained stream, B's encoder into ``second``.

        Raises:
            ConfigError: A path that does not exist.
            CheckpointError: A file without a fitting query encoder.
        """
        roles = ("trained-stream (A)", "frozen-stream (B)")
        for role, path in zip(roles, paths):
            if not resolve_checkpoint_path(path).exists():
                raise ConfigError(
                    f"method.pretrain {role} checkpoint {path} does not exist; expected a vidssl "
                    "run directory or checkpoint, an exported encoder or a ViCC/CoCLR .pth.tar"
                )
        trust = self.cfg.method.trust_checkpoint
        if paths:
            kind = load_projection_encoder(paths[0], self.encoder_q, trust=trust)
            if kind != "exported":
                self.load_prototypes(paths[0])
        if len(paths) > 1 and self.second is not None:
            load_projection_encoder(paths[1], self.second, trust=trust)
            frozen = "rgb" if self.cfg.method.reverse else "flow"
            check_frozen_augmentation(paths[1], self.cfg.data, frozen)

    def load_prototypes(self, path: str) -> bool:
        """Copies ``prototypes.weight`` of a checkpoint when it has one of the right shape."""
        file = resolve_checkpoint_path(path)
        raw, _ = find_state_dict(
            read_checkpoint(file, trust=self.cfg.method.trust_checkpoint), ("state_dict",), file
        )
        state = {strip_data_parallel(k): v for k, v in raw.items()}
        weight = state.get("prototypes.weight")
        if weight is None or weight.shape != self.prototypes.weight.shape:
            log.warning("%s has no prototypes of shape %s; prototypes left at init", file,
                        tuple(self.prototypes.weight.shape))  # fmt: skip
            return False
        with torch.no_grad():
            self.prototypes.weight.copy_(weight)
        return True

    def train(self, mode: bool = True) -> ViCC:
        """Sets train/eval mode; the frozen ``second`` stream always stays in eval mode."""
        super().train(mode)
        if self.second is not None:
            self.second.eval()
        return self

    @property
    def backbone(self) -> nn.Module:
        """The trained stream's backbone (what gets exported)."""
        return self.encoder_q.backbone

    # ---------------------------------------------------------------------------- pieces
    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        """L2-normalises every prototype row in place (before every step, as the reference)."""
        weight = self.prototypes.weight
        weight.copy_(F.normalize(weight.data, dim=1, p=2))

    def stream_views(self, batch: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``(trained-stream clips, other-stream clips)``; the other is empty in single stream."""
        m = self.cfg.method
        if (m.cross or m.reverse) and "flow_views" not in batch:
            raise ConfigError(
                f"ViCC with method.cross={m.cross}, method.reverse={m.reverse} needs two-stream "
                "batches ('views' and 'flow_views'); use a two-stream dataset (data.flow_media)"
            )
        if not m.cross:
            return (batch["flow_views"] if m.reverse else batch["views"]), []
        rgb, flow = batch["views"], batch["flow_views"]
        return (flow, rgb) if m.reverse else (rgb, flow)

    def encode_second_clip(self, clips: torch.Tensor) -> torch.Tensor:
        """Embeddings of the trained stream's clip 2: with gradient, or batch-shuffled no-grad."""
        if self.cfg.method.second_clip_grad:
            return self.encoder_q(clips)
        with torch.no_grad():
            shuffled, unshuffle_index = batch_shuffle(clips)
            return batch_unshuffle(self.encoder_q(shuffled), unshuffle_index)

    def embed_views(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        """The 2 (single) or 4 (cross) L2-normalised view embeddings, in view order."""
        main, other = self.stream_views(batch)
        embeddings = [self.encoder_q(main[0]), self.encode_second_clip(main[1])]
        if self.second is not None:
            with torch.no_grad():
                embeddings += [self.second(other[1]), self.second(other[0])]
        return embeddings

    def queue_active(self, epoch: int) -> bool:
        """Whether this epoch pushes into (and, once full, reads) the queue."""
        return self.queue.shape[2] > 0 and epoch >= self.cfg.method.epoch_queue_starts

    @torch.no_grad()
    def assign(
        self, slot: int, scores: torch.Tensor, embeddings: torch.Tensor, active: bool
    ) -> tuple[torch.Tensor, bool]:
        """Codes of one assigned view (after the queue's scores when it is full), then push.

        Returns:
            ``(codes [B, K], queue_used)``.
        """
        m, batch = self.cfg.method, scores.shape[0]
        scores = scores.detach().float()
        used = False
        if active:
            rank, world = rank_and_world()
            if world != self.queue.shape[1]:
                self.resize_queue(world)
            local = self.queue[slot, rank]
            used = bool((local[-1] != 0).any())
            if used:
                scores = torch.cat([local @ self.prototypes.weight.detach().float().t(), scores])
            queues = self.queue[slot]  # every rank's queue: the same on all ranks
            incoming = concat_all_gather(embeddings.detach().to(queues.dtype).contiguous())
            queues[:, batch:] = queues[:, :-batch].clone()
            queues[:, :batch] = incoming.view(world, batch, -1)
        codes = sinkhorn(scores, m.epsilon, m.sinkhorn_iterations, stabilize=m.stabilize)
        return codes[-batch:], used

    def drop_frozen_prototype_gradients(self, epoch: int) -> None:
        """Sets the prototype gradient to None while ``epoch < freeze_prototypes_nepochs``."""
        if epoch < self.cfg.method.freeze_prototypes_nepochs:
            self.prototypes.weight.grad = None

    def on_after_backward(self) -> None:
        """Lightning hook: no prototype update during the frozen epochs."""
        self.drop_frozen_prototype_gradients(self.current_epoch)

    # ------------------------------------------------------------------------------ step
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Lightning's step: `vicc_step` at the trainer's epoch."""
        return self.vicc_step(batch, self.current_epoch)

    def vicc_step(self, batch: dict[str, Any], epoch: int = 0) -> dict[str, Any]:
        """One ViCC step without the trainer: renormalise, embed, score, assign, loss.

        Args:
            batch: ``views`` (and ``flow_views`` for the cross stage or ``reverse``), optionally
                ``label`` for the code-agreement diagnostic.
            epoch: The epoch this step belongs to (queue start).

        Returns:
            ``loss`` (with a graph), ``queue_used`` (share of assigned views whose full queue
            entered the codes), ``prototypes_frozen`` and, with 1-D labels, ``code_agreement``
            / ``code_agreement_other_class`` (`code_agreement` on the argmax codes of the frozen
            stream's clip-2 view in the cross stage, of view 0 in single stream).
        """
        m = self.cfg.method
        self.normalize_prototypes()
        embeddings = self.embed_views(batch)
        scores = [self.prototypes(e) for e in embeddings]
        active = self.queue_active(epoch)
        codes: dict[int, torch.Tensor] = {}
        used = 0
        for slot, view in enumerate(self.assign_views):
            codes[view], was_used = self.assign(slot, scores[view], embeddings[view], active)
            used += was_used
        loss = swapped_prediction_loss(scores, codes, m.temperature)
        outputs: dict[str, Any] = {
            "loss": loss,
            "queue_used": used / len(self.assign_views),
            "prototypes_frozen": float(epoch < m.freeze_prototypes_nepochs),
        }
        labels = batch.get("label")
        if labels is not None and torch.as_tensor(labels).ndim == 1:
            view = next((v for v in FROZEN_VIEWS if v in codes), min(codes))
            same, other = code_agreement(codes[view], torch.as_tensor(labels))
            if same == same:  # not NaN: some sample has a same-class neighbour
                outputs["code_agreement"] = same
            if other == other:
                outputs["code_agreement_other_class"] = other
        return outputs
