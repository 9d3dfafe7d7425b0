"""CoCLR (co-training with a frozen other-stream encoder) and CPR (cascade positive retrieval).

CoCLR (``main_coclr.py``) trains one stream (RGB; flow with ``method.reverse=true``) with
positives mined by the other, frozen stream:

- ``q = encoder_q(main clip 1)``, ``k = encoder_k(main clip 2)`` (EMA 0.999, batch shuffle),
  ``kf = sampler(other-stream clip 2)``: the other stream's query encoder, frozen and always in
  eval mode, so neither its weights nor its BN statistics ever change;
- three queues: ``queue`` (``k``), ``queue_second`` (``kf``) and the source-group ids
  (``queue.groups``; the video index when a dataset has no groups), plus class labels used only
  to log the mining recall;
- positives ``P = {instance} ∪ siblings ∪ top-k`` (`vidssl.methods.mining`): the instance key,
  the queue entries of the same source group, and the ``topk`` queue entries whose ``kf`` is
  closest to this ``kf`` (self and siblings excluded); the loss is
  ``−log Σ_{p∈P} softmax([q·k | q·queue]/τ)_p`` (`multi_positive_nce(mode="sum")`);
- with probability ``instance_drop`` (0.9) per step the instance positive leaves ``P`` of every
  row that has other positives (CoCLR commit 45f200e);
- no gradient step until the queue the loss sees is full (forward, enqueue and EMA still run);
- ``method.cascade=true`` (CPR) replaces the top-k by the alternating cascade
  (`cascade_positives`, pools ``int(K·ratio^(s+1))``).

``method.pretrain: [A, B]``: the trained stream starts from A's query encoder (copied into
``encoder_q`` and ``encoder_k``), the frozen stream is B's query encoder
(`vidssl.models.checkpoints.projection`); queues always start empty.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch

from vidssl.config.schema import Config
from vidssl.errors import ConfigError
from vidssl.methods.frozen_stream import check_frozen_augmentation
from vidssl.methods.losses import contrastive_logits, multi_positive_nce, topk_hit_rate
from vidssl.methods.mining import (
    cascade_pool_sizes,
    cascade_positives,
    coclr_positive_mask,
    draw_instance_drop,
    drop_instance_positive,
    mining_class_recall,
    sibling_mask,
    topk_positives,
)
from vidssl.methods.moco import (
    FeatureQueue,
    MomentumContrastConfig,
    MomentumContrastMethod,
    concat_all_gather,
)
from vidssl.methods.registry import register_method
from vidssl.models.checkpoints.projection import load_projection_encoder, resolve_checkpoint_path

__all__ = ["CoCLR", "CoCLRConfig", "cascade_positives"]


@dataclass
class CoCLRConfig(MomentumContrastConfig):
    """CoCLR / CPR settings (``main_coclr.py`` defaults; CPR flags ``--cascade --stage --ratio``).

    Attributes:
        pretrain: ``[A, B]``: A = checkpoint of the stream to train (its query encoder goes into
            the query and key encoders), B = checkpoint of the frozen other stream.
        reverse: Train the flow stream (``flow_views``) with RGB mining instead of RGB with
            flow mining.
        topk: Positives mined per query (``--topk``).
        instance_drop: Probability per step of dropping the instance positive.
        cascade: Use CPR's cascade instead of the single top-k.
        stages: Cascade stages (``--stage``).
        ratio: Fraction of the candidate pool kept per cascade stage (``--ratio``).
        trust_checkpoint: Allow arbitrary unpickling of the pretrain files (trusted files only).
    """

    name: str = "coclr"
    pretrain: list[str] = field(default_factory=list)
    reverse: bool = False
    topk: int = 5
    instance_drop: float = 0.9
    cascade: bool = False
    stages: int = 7
    ratio: float = 0.5
    trust_checkpoint: bool = False


@register_method("coclr")
class CoCLR(MomentumContrastMethod):
    """Co-training: one stream learns from positives mined by the frozen other stream."""

    config_class = CoCLRConfig

    @classmethod
    def queue_tracking(cls, cfg: Config) -> tuple[bool, bool]:
        """Groups for siblings and mining exclusion; labels for the mining-recall log only."""
        return True, True

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """Checks the pretrain pair, top-k, drop probability, (CPR) the cascade pools and modality.

        ``data.modality`` must name the trained stream (flow with ``reverse``), so that an
        exported flow encoder never says ``rgb``.
        """
        super().validate_config(cfg)
        m = cfg.method
        if len(m.pretrain) != 2:
            raise ConfigError(
                f"method.pretrain has {len(m.pretrain)} entries; expected [A, B]: the checkpoint "
                "of the stream to train and the checkpoint of the frozen other stream"
            )
        if not 0.0 <= m.instance_drop <= 1.0:
            raise ConfigError(f"method.instance_drop={m.instance_drop} is not in [0, 1]")
        if m.cascade:
            cascade_pool_sizes(m.queue_size, m.topk, m.ratio, m.stages)  # ConfigError if not
        elif not 1 <= m.topk <= m.queue_size:
            raise ConfigError(f"method.topk={m.topk} is not in [1, queue_size={m.queue_size}]")
        trained = "flow" if m.reverse else "rgb"
        if cfg.data.modality != trained:
            raise ConfigError(
                f"data.modality={cfg.data.modality} but method.reverse={m.reverse} trains the "
                f"{trained} stream; set data.modality={trained} (the exported encoder records it)"
            )

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        m = cfg.method
        self.queue_second = FeatureQueue(m.queue_size, cfg.model.proj_dim)
        self.sampler = copy.deepcopy(self.encoder_q)
        self.sampler.requires_grad_(False)
        self.load_pretrained(m.pretrain)
        self.sampler.eval()
        self.drop_generator = torch.Generator().manual_seed(cfg.trainer.seed)

    def load_pretrained(self, paths: list[str]) -> None:
        """A's query encoder into ``encoder_q`` and ``encoder_k``, B's into ``sampler``.

        Raises:
            ConfigError: A path that does not exist.
            CheckpointError: A file without a fitting query encoder.
        """
        for role, path in zip(("trained-stream (A)", "frozen-stream (B)"), paths):
            if not resolve_checkpoint_path(path).exists():
                raise ConfigError(
                    f"method.pretrain {role} checkpoint {path} does not exist; expected a vidssl "
                    "run directory or checkpoint, an exported encoder or a CoCLR .pth.tar"
                )
        trust = self.cfg.method.trust_checkpoint
        load_projection_encoder(paths[0], self.encoder_q, trust=trust)
        self.encoder_k.load_state_dict(self.encoder_q.state_dict())
        load_projection_encoder(paths[1], self.sampler, trust=trust)
        # the sampler ranks flow clips when RGB is trained, RGB clips when flow is (reverse)
        frozen = "rgb" if self.cfg.method.reverse else "flow"
        check_frozen_augmentation(paths[1], self.cfg.data, frozen)

    def train(self, mode: bool = True) -> CoCLR:
        """Sets train/eval mode; the frozen ``sampler`` always stays in eval mode."""
        super().train(mode)
        self.sampler.eval()
        return self

    # -------------------------------------------------------------------------- pieces
    def stream_views(self, batch: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``(trained-stream clips, frozen-stream clips)``: RGB/flow, swapped by ``reverse``."""
        if "flow_views" not in batch:
            raise ConfigError(
                f"{self.method_name} needs two-stream batches ('views' and 'flow_views'); "
                "use a two-stream dataset (data.flow_media)"
            )
        rgb, flow = batch["views"], batch["flow_views"]
        return (flow, rgb) if self.cfg.method.reverse else (rgb, flow)

    def training_views(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        """The trained stream's clips."""
        return self.stream_views(batch)[0]

    def queue_metadata(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Class labels (−1 when the batch has none) and source groups (else the video index)."""
        groups = self.batch_ids(batch, "group" if "group" in batch else "index")
        label = batch.get("label")
        if label is None or torch.as_tensor(label).ndim != 1:
            return torch.full_like(groups, -1), groups
        return self.batch_ids(batch, "label"), groups

    @torch.no_grad()
    def mine(
        self,
        q: torch.Tensor,
        kf: torch.Tensor,
        groups: torch.Tensor,
        queue: torch.Tensor,
        queue_second: torch.Tensor,
        queue_groups: torch.Tensor,
    ) -> torch.Tensor:
        """Mined queue slots ``[B, K]``; siblings (self) and never-written slots are excluded."""
        m = self.cfg.method
        unwritten = torch.arange(m.queue_size, device=queue.device) >= self.queue.count
        exclude = sibling_mask(groups, queue_groups) | unwritten[None, :]
        if m.cascade:
            return cascade_positives(kf, q, queue_second, queue, exclude, m.topk, m.ratio, m.stages)
        return topk_positives(kf, queue_second, exclude, m.topk)

    def enqueue_step(
        self, k: torch.Tensor, kf: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor
    ) -> None:
        """Writes ``k`` (with labels and groups) and ``kf`` at the same slots on every rank."""
        self.enqueue(k, labels, groups)
        self.queue_second.enqueue(concat_all_gather(kf))

    # ---------------------------------------------------------------------------- step
    def contrastive_step(self, batch: dict[str, Any]) -> dict[str, Any]:
        """One CoCLR step: q, EMA + k, kf, mining, loss, enqueue, metrics.

        Returns:
            ``loss``, ``top1``/``top5`` (a hit when any positive before the instance drop is in
            the top-k logits), ``queue_fill``, ``mined`` (mean mined positives per query),
            ``instance_dropped`` (this step's draw), ``mining_recall`` / ``mining_recall_median``
            (mean and median over queries of the fraction of mined positives of the query's
            class; only when the batch has labels), and ``queue_warmup`` (1 while the queue
            the loss used was not yet full: `skip_optimizer_step` then leaves the weights alone).
        """
        m = self.cfg.method
        main, other = self.stream_views(batch)
        queue_full = bool(self.queue.count >= m.queue_size)
        q = self.encoder_q(main[0])
        k = self.compute_keys(main[1])
        with torch.no_grad():
            kf = self.sampler(other[1])
        queue = self.queue.snapshot()
        queue_second = self.queue_second.keys.clone()
        labels, groups = self.queue_metadata(batch)
        assert queue.groups is not None and queue.labels is not None  # tracked
        logits = contrastive_logits(q, k, queue.keys, m.temperature)
        mined = self.mine(q, kf, groups, queue.keys, queue_second, queue.groups)
        positives = coclr_positive_mask(groups, queue.groups, mined)
        drop = draw_instance_drop(self.drop_generator, m.instance_drop)
        loss = multi_positive_nce(logits, drop_instance_positive(positives, drop), "sum")
        hits = topk_hit_rate(logits, positives, (1, 5))
        outputs: dict[str, Any] = {
            "loss": loss,
            "top1": hits[1],
            "top5": hits[5],
            "mined": mined.sum(dim=1).float().mean(),
            "instance_dropped": float(drop),
        }
        if bool((labels >= 0).all()):
            recall, median = mining_class_recall(mined, labels, queue.labels)
            outputs["mining_recall"], outputs["mining_recall_median"] = recall, median
        outputs = self.extra_terms(outputs, batch, queue)
        self.enqueue_step(k, kf, labels, groups)
        outputs["queue_fill"] = self.queue.fill_fraction()
        outputs["queue_warmup"] = float(not queue_full)
        return outputs

    def skip_optimizer_step(self) -> bool:
        """No optimiser step until the queue the loss sees is full (CoCLR's warm-up)."""
        return bool(self.queue.count < self.cfg.method.queue_size)

    # ---------------------------------------------------------------------- checkpoints
    def extra_state(self) -> dict[str, Any]:
        """The instance-drop generator (exact resume)."""
        return {"drop_generator": self.drop_generator.get_state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restores the instance-drop generator."""
        if "drop_generator" in state:
            self.drop_generator.set_state(state["drop_generator"])
