"""Linear probe on frozen features (CoCLR/ViCC ``--train_what last``).

Head: L2-normalise → ``BatchNorm1d`` → ``Linear`` (weights N(0, 0.01), zero bias). SGD with
momentum 0.9, lr 0.1, weight decay 1e-3, 100 epochs, lr ×0.1 at epochs 60 and 80 (the reference
multiplies the lr at the start of each listed epoch). The backbone never trains (eval mode), so a
clip's feature does not depend on when it is computed. Train clips (``linear.train_clips``):

- ``augmented`` (preset ``coclr_linear``, the reference protocol): every epoch, one random clip
  per video with fine-tuning augmentation (resized crop area ≥ 0.2, jitter p=0.3, flip), freshly
  drawn each epoch (``augment_repeats=0``; ``n > 0`` draws ``n`` clip sets once and cycles them);
  batch 64 with ``drop_last``;
- ``windows`` (preset ``coclr_linear_fast``): the features of every sliding window (centre crop)
  extracted once and reused every epoch, batch 256.

Test: per sliding window, the softmax averaged over each video's windows before top-1/top-5 are
taken (per video). The last epoch's head is reported (the reference selects its checkpoint on 30 %
of the test split).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidssl.config.schema import OptimConfig, ScheduleConfig
from vidssl.data.sampling import RandomClip
from vidssl.data.transforms.presets import coclr_finetune
from vidssl.errors import UserError
from vidssl.eval.config import EvalConfig, LinearSettings
from vidssl.eval.features import ClipOutputs
from vidssl.eval.fusion import fuse_probabilities
from vidssl.optim import build_optimizer, lr_multiplier

__all__ = [
    "LinearProbe",
    "fused_topk_accuracy",
    "mean_probabilities",
    "probe_batches",
    "run_linear_probe",
    "topk_accuracy",
    "train_linear_probe",
    "train_linear_probe_epochs",
]

#: Per epoch: ``(features [N, D], class ids [N])`` the probe trains on in that epoch.
EpochFeatures = Callable[[int], tuple[torch.Tensor, "np.ndarray | torch.Tensor"]]

logger = logging.getLogger(__name__)


class LinearProbe(nn.Module):
    """L2-norm → BatchNorm1d → Linear on frozen features."""

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(feature_dim)
        self.fc = nn.Linear(feature_dim, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, num_classes]``."""
        return self.fc(self.bn(F.normalize(feats, dim=1)))


def epoch_lr_factor(settings: LinearSettings | Any, epoch: int) -> float:
    """``gamma ** (number of milestones <= epoch)`` (`vidssl.optim.lr_multiplier`, per epoch)."""
    schedule = ScheduleConfig(
        name="multistep",
        milestones=list(settings.milestones),
        gamma=settings.gamma,
        per_iteration=False,
    )
    return lr_multiplier(schedule, settings.lr, epoch, 1, settings.epochs)


def probe_batches(
    n: int, batch_size: int, drop_last: bool, generator: torch.Generator
) -> list[torch.Tensor]:
    """One epoch's shuffled index batches over ``n`` samples.

    A permutation of ``range(n)`` cut into ``batch_size`` pieces; with ``drop_last`` the last
    incomplete piece is dropped (CoCLR's loaders), and a piece of one sample is always dropped
    (BatchNorm needs two).
    """
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    if batches and (len(batches[-1]) < 2 or (drop_last and len(batches[-1]) < batch_size)):
        batches.pop()
    return batches


def train_linear_probe(
    feats: torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    num_classes: int,
    settings: LinearSettings | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[LinearProbe, list[float]]:
    """Trains the probe on the same ``[N, D]`` features every epoch (`train_linear_probe_epochs`).

    Args:
        feats: Training features (one row per clip).
        labels: ``N`` class ids.
        num_classes: Output classes.
        settings: Hyper-parameters (`LinearSettings` defaults: the CoCLR recipe).
        seed: Seeds initialisation and shuffling.
        device: Where to train.

    Returns:
        ``(probe in eval mode, lr used in each epoch)``.
    """
    return train_linear_probe_epochs(
        lambda _epoch: (feats, labels), num_classes, settings, seed=seed, device=device
    )


def _checked(feats: torch.Tensor, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if len(feats) != len(labels) or len(feats) < 2:
        raise UserError(f"linear probe needs >= 2 labelled features, got {len(feats)}")
    if int(labels.min()) < 0:
        raise UserError("linear probe needs a class label for every training video")
    return feats.float(), labels


def train_linear_probe_epochs(
    epoch_features: EpochFeatures,
    num_classes: int,
    settings: LinearSettings | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[LinearProbe, list[float]]:
    """Trains the probe with SGD and the multistep schedule, on ``epoch_features(e)`` in epoch e.

    Each epoch is one pass over that epoch's features in shuffled batches of
    ``settings.batch_size`` (`probe_batches`, ``settings.drop_last``).

    Args:
        epoch_features: ``epoch -> (features [N, D], class ids [N])``, called once per epoch.
        num_classes: Output classes.
        settings: Hyper-parameters (`LinearSettings` defaults).
        seed: Seeds initialisation and shuffling.
        device: Where to train.

    Returns:
        ``(probe in eval mode, lr used in each epoch)``.

    Raises:
        UserError: fewer than two labelled features, a missing label, or ``drop_last`` leaving
            no batch.
    """
    settings = settings or LinearSettings()
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    probe: LinearProbe | None = None
    optimizer = None
    optim_cfg = OptimConfig(
        name="sgd", lr=settings.lr, weight_decay=settings.weight_decay, momentum=settings.momentum
    )
    lrs = []
    for epoch in range(settings.epochs):
        feats, labels = _checked(*epoch_features(epoch))
        if probe is None:
            probe = LinearProbe(feats.shape[1], num_classes).to(device)
            optimizer = build_optimizer([{"params": list(probe.parameters())}], optim_cfg)
        feats, labels = feats.to(device), labels.to(device)
        lr = settings.lr * epoch_lr_factor(settings, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        lrs.append(lr)
        probe.train()
        batches = probe_batches(len(feats), settings.batch_size, settings.drop_last, generator)
        if not batches:
            raise UserError(
                f"linear.batch_size={settings.batch_size} with linear.drop_last=true leaves no "
                f"batch for {len(feats)} training clips; lower linear.batch_size"
            )
        for batch in batches:
            batch = batch.to(device)
            loss = F.cross_entropy(probe(feats[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if probe is None:
        raise UserError("linear.epochs must be >= 1")
    return probe.eval(), lrs


def mean_probabilities(logits: torch.Tensor, video: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Softmax per clip (``[N, K]`` or ``[N, V, K]``), averaged per video over clips and views.

    Returns:
        ``([videos, K] probabilities, table rows)`` with the rows sorted ascending (`np.unique`),
        whatever the order of the clips.
    """
    probs = logits.float().softmax(dim=-1)
    if probs.ndim == 3:
        probs = probs.mean(dim=1)  # equal clip counts per view, so the order of means is moot
    rows, inverse = np.unique(np.asarray(video), return_inverse=True)
    index = torch.as_tensor(inverse.reshape(-1))
    sums = probs.new_zeros(len(rows), probs.shape[1]).index_add_(0, index, probs)
    counts = torch.bincount(index, minlength=len(rows)).to(probs.dtype)
    return sums / counts[:, None], rows


def topk_accuracy(
    probs: torch.Tensor, labels: np.ndarray, ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """``{"top1": ..., "top5": ...}``: fraction whose label is among the k most probable."""
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    out = {}
    for k in ks:
        top = probs.topk(min(k, probs.shape[1]), dim=1).indices
        out[f"top{k}"] = float((top == labels_t[:, None]).any(dim=1).double().mean())
    return out


def fused_topk_accuracy(
    first: tuple[torch.Tensor, np.ndarray, np.ndarray],
    second: tuple[torch.Tensor, np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """Top-1/top-5 of two streams' averaged probabilities (`fuse_probabilities`).

    Args:
        first: ``(probabilities [V1, K], video ids [V1], labels [V1])`` of the first stream.
        second: The same for the second stream (its labels are not needed).

    Returns:
        ``{"top1", "top5", "videos"}`` over the videos both streams scored.
    """
    fused, ids = fuse_probabilities(first[0], second[0], first[1], second[1])
    label_of = dict(zip(first[1].tolist(), first[2]))
    labels = np.array([label_of[k] for k in ids.tolist()])
    return {**topk_accuracy(fused, labels), "videos": len(ids)}


def train_clip_source(cfg: EvalConfig, stream: Any) -> Callable[[int], ClipOutputs]:
    """``epoch -> train-split outputs`` the probe trains on in that epoch (``linear.train_clips``).

    ``windows``: every sliding window, extracted once. ``augmented``: one random clip per video
    with `coclr_finetune` augmentation per clip set; set ``s`` is extracted with seed
    ``runtime.seed + 1000·(s + 1)``; epoch ``e`` uses set ``e`` (``augment_repeats=0``, a fresh
    draw every epoch as the reference) or ``e mod augment_repeats`` (sets extracted once).
    """
    from vidssl.eval.run import extract

    data, settings = cfg.data, cfg.linear
    if settings.train_clips == "windows":
        windows = extract(cfg, stream, stream.train, "full", "gallery")
        return lambda _epoch: windows
    transform = coclr_finetune(data.img_size, normalization=stream.encoder.spec.normalization)
    sets: dict[int, ClipOutputs] = {}

    def clip_set(epoch: int) -> ClipOutputs:
        index = epoch % settings.augment_repeats if settings.augment_repeats else epoch
        if index not in sets:
            if not settings.augment_repeats:
                sets.clear()  # a fresh draw every epoch: keep only the current one
            seed = cfg.runtime.seed + 1000 * (index + 1)
            sub_cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, seed=seed))
            sampler = RandomClip(data.seq_len, data.ds)
            sets[index] = extract(
                sub_cfg, stream, stream.train, "coclr", "gallery", transform=transform,
                sampler=sampler,
            )  # fmt: skip
        return sets[index]

    return clip_set


def run_linear_probe(
    encoder: Any,
    config: EvalConfig | str | Path | None = "coclr_linear",
    *,
    overrides: Sequence[str] = (),
    flow_encoder: Any = None,
    out: str | Path | None = None,
    name: str = "linear",
) -> dict[str, Any]:
    """Linear probe: train on train-split features, test top-1/top-5 per test video.

    Args:
        encoder: Our export directory or an `EvalEncoder`.
        config: `EvalConfig`, eval preset name or YAML path.
        overrides: ``key=value`` settings.
        flow_encoder: Optional flow encoder; adds ``flow`` and ``fused`` (averaged probabilities).
        out: Output directory (default ``runtime.out``).
        name: File stem of the results.

    Returns:
        The result record: ``record["results"]["rgb"]["top1"]`` (fraction) and ``"top5"``.
    """
    from vidssl.eval.features import check_degenerate, resolve_device
    from vidssl.eval.run import as_config, clip_protocol_record, extract, finish, load_streams

    cfg = as_config(config, overrides)
    streams = load_streams(cfg, encoder, flow_encoder)
    device = resolve_device(cfg.runtime.device)
    results: dict[str, Any] = {}
    skipped: dict[str, list[str]] = {}
    probs = []
    for stream in streams:
        source = train_clip_source(cfg, stream)
        train = source(0)
        failed_train: set[str] = set()

        def epoch_features(epoch: int, source=source, failed_train=failed_train) -> tuple:
            outputs = source(epoch)
            failed_train.update(outputs.skipped())
            return outputs.features, outputs.clip_labels

        test = extract(cfg, stream, stream.test, "full", "query")
        skipped[f"{stream.name}_{stream.test.split}"] = test.skipped()
        degenerate = [
            check_degenerate(outputs, f"linear probe {stream.name} {table.split}")
            for outputs, table in ((train, stream.train), (test, stream.test))
        ]
        num_classes = len(stream.train.class_names)
        probe, _ = train_linear_probe_epochs(
            epoch_features, num_classes, cfg.linear, seed=cfg.runtime.seed, device=device
        )
        skipped[f"{stream.name}_{stream.train.split}"] = sorted(failed_train)
        with torch.no_grad():
            logits = probe(test.features.to(device)).cpu()
        video_probs, rows = mean_probabilities(logits, test.video)
        accuracy = topk_accuracy(video_probs, test.labels[rows])
        results[stream.name] = {
            **accuracy,
            "videos": len(rows),
            "train_clips": len(train.video),  # per epoch
            "degenerate_features": any(degenerate),
        }
        probs.append((video_probs, stream.test.video_keys()[rows], test.labels[rows]))
        logger.info("linear probe %s: top1 %.2f", stream.name, 100 * accuracy["top1"])
    if len(probs) == 2:
        results["fused"] = fused_topk_accuracy(*probs)
    protocol = clip_protocol_record(cfg, "full")
    protocol.update(
        train_clips=cfg.linear.train_clips,
        batch_size=cfg.linear.batch_size,
        drop_last=cfg.linear.drop_last,
        test_clips=protocol.pop("query_clips"),
        head="l2 -> batchnorm1d -> linear",
    )
    protocol.pop("gallery_clips")
    return finish(cfg, "linear", streams, protocol, results, skipped, out, name)
