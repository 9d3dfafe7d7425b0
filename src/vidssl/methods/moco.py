"""Momentum-contrast machinery shared by InfoNCE, UberNCE and the CoCLR family.

- ``encoder_q`` (backbone → pool → 1×1×1-conv MLP → L2-norm, `ProjectionEncoder`) and its
  frozen copy ``encoder_k``, moved by ``θ_k ← m·θ_k + (1 − m)·θ_q`` right **before** the keys
  are computed;
- a `FeatureQueue` of ``K`` keys ``[K, D]`` (references: ``[D, K]``), a write pointer and
  optional per-slot labels and source groups (−1 = empty / none); keys, labels and groups are
  gathered over ranks in rank order (`concat_all_gather`, a no-op without a process group) before
  they are written, so every rank holds the same queue;
- key-encoder batch norm across ranks: MoCo's batch shuffle (``method.batch_norm=shuffle``,
  default), SyncBatchNorm (``sync``) or per rank (``local``); all plain BN in one process.

The queue must hold whole global batches (``K % (batch × world) == 0``, as the references
assert); `MomentumContrastMethod` raises a `ConfigError` otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vidssl.config.schema import Config, MethodConfig, ModelConfig
from vidssl.errors import ConfigError
from vidssl.methods.base import BaseMethod
from vidssl.methods.losses import contrastive_logits, topk_hit_rate
from vidssl.models import build_backbone
from vidssl.models.heads import ProjectionEncoder

#: Prefix of the query encoder's backbone in a method's state dict (what gets exported).
ENCODER_PREFIX = "encoder_q.backbone."


# ------------------------------------------------------------------------------ distributed
def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` when none is running."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def concat_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenates ``tensor`` from every rank along dim 0, in rank order (no gradient).

    Every rank must pass the same shape. Without a process group (or with one process) the
    input itself is returned.
    """
    _, world = rank_and_world()
    if world == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def batch_shuffle(clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo's batch shuffle: this rank's share of a random permutation of the global batch.

    The clips of all ranks are gathered (rank order), permuted by a permutation drawn from the
    global torch RNG on rank 0 and broadcast, and rank ``r`` keeps rows
    ``perm[r·B:(r+1)·B]``. Without a process group the input comes back unpermuted.

    Returns:
        ``(local_shuffled_clips, unshuffle_index)``; pass the index to `batch_unshuffle`.
    """
    rank, world = rank_and_world()
    if world == 1:
        return clips, torch.arange(clips.shape[0], device=clips.device)
    gathered = concat_all_gather(clips)
    permutation = torch.randperm(gathered.shape[0], device=clips.device)
    dist.broadcast(permutation, src=0)
    local = permutation.view(world, -1)[rank]
    return gathered[local], torch.argsort(permutation)


@torch.no_grad()
def batch_unshuffle(outputs: torch.Tensor, unshuffle_index: torch.Tensor) -> torch.Tensor:
    """Inverse of `batch_shuffle`: this rank's outputs back in its original batch order."""
    rank, world = rank_and_world()
    if world == 1:
        return outputs
    gathered = concat_all_gather(outputs)
    return gathered[unshuffle_index.view(world, -1)[rank]]


@torch.no_grad()
def momentum_update(
    online: Sequence[torch.Tensor], target: Sequence[torch.Tensor], momentum: float
) -> None:
    """In place, for every pair: ``target ← target·momentum + online·(1 − momentum)``.

    Two rounded products and a rounded sum, so the result is bit for bit the references'
    ``param_k * m + param_q * (1 - m)`` (a fused multiply-add would differ in the last bit);
    done with multi-tensor kernels, a handful of launches for the whole network.
    """
    target, online = list(target), list(online)
    torch._foreach_mul_(target, momentum)
    torch._foreach_add_(target, torch._foreach_mul(online, 1.0 - momentum))


# ------------------------------------------------------------------------------------ queue
class QueueSnapshot(NamedTuple):
    """Copies of the queue taken before this step's keys are written (what the loss sees)."""

    keys: torch.Tensor  # [K, D]
    labels: torch.Tensor | None  # [K], -1 = empty slot
    groups: torch.Tensor | None  # [K], -1 = empty slot / no group


class FeatureQueue(nn.Module):
    """A ring buffer of ``size`` L2-normalised keys ``[K, D]`` with optional labels and groups.

    Buffers (checkpointed): ``keys [K, D]`` (random unit vectors at start, as in MoCo),
    ``ptr [1]`` (next slot), ``count [1]`` (keys written so far), and ``labels [K]`` /
    ``groups [K]`` (int64, −1 until written) when tracked. All updates stay on the device (no
    host synchronisation).

    Args:
        size: Number of slots ``K``.
        dim: Key dimension ``D``.
        track_labels: Keep the class label of every slot (UberNCE positives).
        track_groups: Keep the source-group id of every slot (sibling masking, CoCLR).
    """

    def __init__(
        self, size: int, dim: int, *, track_labels: bool = False, track_groups: bool = False
    ) -> None:
        super().__init__()
        self.size, self.dim = size, dim
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("count", torch.zeros(1, dtype=torch.long))
        empty = torch.full((size,), -1, dtype=torch.long)
        self.register_buffer("labels", empty.clone() if track_labels else None)
        self.register_buffer("groups", empty.clone() if track_groups else None)

    @torch.no_grad()
    def enqueue(
        self,
        keys: torch.Tensor,
        labels: torch.Tensor | None = None,
        groups: torch.Tensor | None = None,
    ) -> None:
        """Writes ``n`` keys at slots ``ptr, ptr+1, … (mod K)`` and advances ``ptr`` by ``n``.

        Args:
            keys: ``[n, D]`` keys, ``n ≤ K`` (already gathered over ranks).
            labels: ``[n]`` class ids; required when labels are tracked, ignored otherwise.
            groups: ``[n]`` source-group ids; required when groups are tracked.
        """
        n = keys.shape[0]
        if n > self.size or keys.shape[1] != self.dim:
            raise ValueError(
                f"cannot enqueue {tuple(keys.shape)} into a queue of {self.size}×{self.dim}"
            )
        slots = (self.ptr + torch.arange(n, device=self.ptr.device)) % self.size
        self.keys.index_copy_(0, slots, keys.detach().to(self.keys.dtype))
        for name, values in (("labels", labels), ("groups", groups)):
            buffer = getattr(self, name)
            if buffer is None:
                continue
            if values is None or values.shape != (n,):
                raise ValueError(f"queue tracks {name}: pass {name} of shape [{n}]")
            buffer.index_copy_(0, slots, values.to(buffer))
        self.ptr.copy_((self.ptr + n) % self.size)
        self.count.add_(n)

    def fill_fraction(self) -> torch.Tensor:
        """Fraction of slots written at least once (0-dim float tensor)."""
        return self.count.clamp(max=self.size).float().squeeze(0) / self.size

    def snapshot(self) -> QueueSnapshot:
        """Copies of keys, labels and groups (the loss must not see this step's writes)."""
        copy_of = lambda t: None if t is None else t.clone()  # noqa: E731
        return QueueSnapshot(self.keys.clone(), copy_of(self.labels), copy_of(self.groups))


# ----------------------------------------------------------------------------------- method
@dataclass
class MomentumContrastConfig(MethodConfig):
    """Fields shared by the momentum-contrast methods (CoCLR ``--moco-*`` defaults).

    Attributes:
        queue_size: Queue length ``K`` (``--moco-k``); a multiple of the global batch.
        momentum: Key-encoder EMA momentum ``m`` (``--moco-m``).
        temperature: Softmax temperature ``τ`` (``--moco-t``).
        batch_norm: Key-encoder batch norm across ranks: ``shuffle`` (MoCo batch shuffle),
            ``sync`` (SyncBatchNorm in both encoders, CUDA only) or ``local`` (per rank).
    """

    queue_size: int = 2048
    momentum: float = 0.999
    temperature: float = 0.07
    batch_norm: Literal["shuffle", "sync", "local"] = "shuffle"


class ContrastiveTerms(NamedTuple):
    """What a subclass's loss hook returns."""

    loss: torch.Tensor  # scalar
    logits: torch.Tensor  # [B, 1+K] as used by the loss (masked entries at -inf)
    positives: torch.Tensor  # bool [B, 1+K]


def build_projection_encoder(model: ModelConfig) -> ProjectionEncoder:
    """The query encoder of the contrastive and prototype methods.

    ``model.backbone`` (input channels, width) → pool → projection MLP → L2-normalised
    ``model.proj_dim`` features.
    """
    backbone = build_backbone(
        model.backbone, in_channels=model.in_channels, width_mult=model.width_mult
    )
    return ProjectionEncoder(backbone, model.proj_hidden_dim, model.proj_dim)


class MomentumContrastMethod(BaseMethod):
    """A `BaseMethod` with query/key encoders, EMA, a key queue and the shared training step.

    Subclasses say what the queue remembers (`queue_tracking`) and implement
    `contrastive_loss`; `training_step` then runs: ``q = encoder_q(views[0])``, EMA update,
    ``k = encoder_k(views[1])`` (batch-shuffled), logits ``[q·k | q·queue] / τ`` against the queue
    as it was before this step, the subclass's loss, enqueue of the gathered keys, and logs
    ``loss``, ``top1``/``top5`` (a hit when a positive is among the top-k logits the loss used)
    and ``queue_fill``.
    """

    config_class = MomentumContrastConfig

    @classmethod
    def queue_tracking(cls, cfg: Config) -> tuple[bool, bool]:
        """``(track_labels, track_groups)``: the per-slot columns the queue keeps."""
        return False, False

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        m, model = cfg.method, cfg.model
        self.encoder_q = build_projection_encoder(model)
        if m.batch_norm == "sync":
            self.encoder_q = nn.SyncBatchNorm.convert_sync_batchnorm(self.encoder_q)
        self.encoder_k = copy.deepcopy(self.encoder_q)
        self.encoder_k.requires_grad_(False)
        self._ema_parameters: tuple[list[nn.Parameter], list[nn.Parameter]] | None = None
        self.track_labels, self.track_groups = self.queue_tracking(cfg)
        self.queue = FeatureQueue(
            m.queue_size,
            model.proj_dim,
            track_labels=self.track_labels,
            track_groups=self.track_groups,
        )

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """Checks queue size, momentum, temperature and the number of views."""
        m, batch = cfg.method, cfg.data.batch_size
        if m.queue_size < 1 or m.queue_size % batch:
            raise ConfigError(
                f"method.queue_size={m.queue_size} is not a positive multiple of "
                f"data.batch_size={batch} (the queue must hold whole global batches)"
            )
        if not 0.0 <= m.momentum < 1.0:
            raise ConfigError(f"method.momentum={m.momentum} is not in [0, 1)")
        if not m.temperature > 0:
            raise ConfigError(f"method.temperature={m.temperature} is not a positive float")
        if cfg.data.num_views < 2:
            raise ConfigError(f"data.num_views={cfg.data.num_views} is not ≥ 2 (query and key)")

    def check_distributed_setup(self, world_size: int, device: torch.device) -> None:
        """Raises `ConfigError` for a setup the step cannot run with.

        That is: a queue that is not a multiple of the global batch, partial batches with several
        processes (keys could not be gathered), or SyncBatchNorm on CPU with several processes.
        """
        m, batch = self.cfg.method, self.cfg.data.batch_size
        global_batch = batch * world_size
        if m.queue_size % global_batch:
            raise ConfigError(
                f"method.queue_size={m.queue_size} is not a multiple of the global batch "
                f"{global_batch} (data.batch_size={batch} × {world_size} processes)"
            )
        if world_size > 1 and not self.cfg.data.drop_last:
            raise ConfigError(
                "data.drop_last=false: every process needs full batches to gather keys"
            )
        if m.batch_norm == "sync" and world_size > 1 and device.type == "cpu":
            raise ConfigError("method.batch_norm=sync needs CUDA devices; use shuffle or local")

    def on_fit_start(self) -> None:
        """Checks the queue against the global batch once the trainer knows the world size."""
        self.check_distributed_setup(self.trainer.world_size, self.device)
        self._ema_parameters = None

    # ------------------------------------------------------------------------ pieces
    @property
    def backbone(self) -> nn.Module:
        """The query encoder's backbone (what `encoder_state_dict` exports)."""
        return self.encoder_q.backbone

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The query backbone's weights, keys relative to the backbone (no prefix).

        In the method's own state dict they live under `ENCODER_PREFIX` (``encoder_q.backbone.``).
        """
        return {k: v.detach().clone() for k, v in self.backbone.state_dict().items()}

    @torch.no_grad()
    def update_key_encoder(self) -> None:
        """EMA step ``θ_k ← m·θ_k + (1 − m)·θ_q`` over all parameters (not buffers)."""
        # Walking the module tree costs ~0.5 ms per encoder: the lists are built once (and again
        # at fit start, after Lightning has placed the model).
        if self._ema_parameters is None:
            self._ema_parameters = (
                list(self.encoder_q.parameters()),
                list(self.encoder_k.parameters()),
            )
        momentum_update(*self._ema_parameters, self.cfg.method.momentum)

    @torch.no_grad()
    def encode_keys(self, clips: torch.Tensor) -> torch.Tensor:
        """L2-normalised keys of ``clips`` by the key encoder as it is (no EMA step).

        Under ``batch_norm=shuffle`` the clips are batch-shuffled across ranks before the key
        encoder and the keys unshuffled after it, so row ``i`` of the result is always the key of
        ``clips[i]``.
        """
        if self.cfg.method.batch_norm != "shuffle":
            return self.encoder_k(clips)
        shuffled, unshuffle_index = batch_shuffle(clips)
        return batch_unshuffle(self.encoder_k(shuffled), unshuffle_index)

    @torch.no_grad()
    def compute_keys(self, clips: torch.Tensor) -> torch.Tensor:
        """EMA update, then L2-normalised keys of ``clips`` (`encode_keys`)."""
        self.update_key_encoder()
        return self.encode_keys(clips)

    def enqueue(
        self,
        keys: torch.Tensor,
        labels: torch.Tensor | None = None,
        groups: torch.Tensor | None = None,
    ) -> None:
        """Gathers keys (and the tracked labels/groups) over ranks and writes them at ``ptr``."""
        gather = lambda t: None if t is None else concat_all_gather(t)  # noqa: E731
        self.queue.enqueue(
            concat_all_gather(keys),
            gather(labels) if self.track_labels else None,
            gather(groups) if self.track_groups else None,
        )

    def batch_ids(self, batch: dict[str, Any], key: str) -> torch.Tensor:
        """``batch[key]`` as an int64 ``[B]`` tensor on this method's device."""
        values = torch.as_tensor(batch[key], device=self.device)
        if values.ndim != 1:
            raise ConfigError(
                f"{self.method_name} needs one integer '{key}' per clip, got shape "
                f"{tuple(values.shape)} (multi-label datasets are not supported)"
            )
        return values.long()

    def queue_metadata(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(labels, groups)`` of this batch for the tracked queue columns."""
        labels = self.batch_ids(batch, "label") if self.track_labels else None
        groups = self.batch_ids(batch, "group") if self.track_groups else None
        return labels, groups

    def contrastive_loss(
        self,
        logits: torch.Tensor,
        batch: dict[str, Any],
        labels: torch.Tensor | None,
        groups: torch.Tensor | None,
        queue: QueueSnapshot,
    ) -> ContrastiveTerms:
        """Subclass hook: the loss, the logits it used and the positive mask ``[B, 1+K]``.

        Args:
            logits: ``[q·k | q·queue] / τ`` (float32 ``[B, 1+K]``).
            batch: The batch dict.
            labels: This batch's labels (when tracked).
            groups: This batch's groups (when tracked).
            queue: The queue before this step's keys were written.
        """
        raise NotImplementedError

    def training_views(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        """The clips of the stream being trained: ``[query clip, key clip]`` (``views``)."""
        return batch["views"]

    def extra_terms(
        self, outputs: dict[str, Any], batch: dict[str, Any], queue: QueueSnapshot
    ) -> dict[str, Any]:
        """Hook run after the keys and the main loss, before this step's keys are enqueued.

        Subclasses add loss terms here (CVTCL's sub-clip losses) and return the updated
        outputs; ``queue`` is the queue the main loss used. The default returns ``outputs``.
        """
        return outputs

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Lightning's step: `contrastive_step` (then logged and NaN-checked by the base)."""
        return self.contrastive_step(batch)

    def contrastive_step(self, batch: dict[str, Any]) -> dict[str, Any]:
        """One contrastive step without the trainer: query, EMA, keys, loss, enqueue, metrics.

        Returns:
            ``{"loss", "top1", "top5", "queue_fill"}`` (0-dim tensors; ``loss`` has a graph),
            plus whatever `extra_terms` adds.
        """
        views = self.training_views(batch)
        q = self.encoder_q(views[0])
        k = self.compute_keys(views[1])
        queue = self.queue.snapshot()
        logits = contrastive_logits(q, k, queue.keys, self.cfg.method.temperature)
        labels, groups = self.queue_metadata(batch)
        terms = self.contrastive_loss(logits, batch, labels, groups, queue)
        hits = topk_hit_rate(terms.logits, terms.positives, (1, 5))
        outputs = {"loss": terms.loss, "top1": hits[1], "top5": hits[5]}
        outputs = self.extra_terms(outputs, batch, queue)
        self.enqueue(k, labels, groups)
        outputs["queue_fill"] = self.queue.fill_fraction()
        return outputs
