"""Linear probe on frozen features (CoCLR/ViCC ``--train_what last``).

Head: L2-normalise → ``BatchNorm1d`` → ``Linear`` (weights N(0, 0.01), zero bias). SGD with
momentum 0.9, lr 0.1, weight decay 1e-3, 100 epochs, lr ×0.1 at epochs 60 and 80 (the reference
multiplies the lr at the start of each listed epoch). The backbone never trains, so its features
are extracted once: per clip for the train split (every sliding window, or augmented random clips),
and per sliding window for the test split, where the softmax is averaged over each video's windows
before top-1/top-5 are taken (per video).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
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
    "run_linear_probe",
    "topk_accuracy",
    "train_linear_probe",
]

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


def train_linear_probe(
    feats: torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    num_classes: int,
    settings: LinearSettings | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[LinearProbe, list[float]]:
    """Trains the probe on ``[N, D]`` features with SGD and the multistep schedule.

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
    settings = settings or LinearSettings()
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if len(feats) != len(labels) or len(feats) < 2:
        raise UserError(f"linear probe needs >= 2 labelled features, got {len(feats)}")
    if int(labels.min()) < 0:
        raise UserError("linear probe needs a class label for every training video")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    probe = LinearProbe(feats.shape[1], num_classes).to(device)
    optim_cfg = OptimConfig(
        name="sgd", lr=settings.lr, weight_decay=settings.weight_decay, momentum=settings.momentum
    )
    optimizer = build_optimizer([{"params": list(probe.parameters())}], optim_cfg)
    feats, labels = feats.float().to(device), labels.to(device)
    lrs = []
    for epoch in range(settings.epochs):
        lr = settings.lr * epoch_lr_factor(settings, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        lrs.append(lr)
        probe.train()
        order = torch.randperm(len(feats), generator=generator).to(device)
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            loss = F.cross_entropy(probe(feats[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
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


def _train_features(cfg: EvalConfig, stream: Any) -> tuple[ClipOutputs, list[str]]:
    from vidssl.eval.run import extract

    data = cfg.data
    if cfg.linear.train_clips == "windows":
        out = extract(cfg, stream, stream.train, "full", "gallery")
        return out, out.skipped()
    norm = stream.encoder.spec.normalization
    transform = coclr_finetune(data.img_size, normalization=norm)
    parts = []
    for repeat in range(cfg.linear.augment_repeats):
        sub = cfg.runtime.seed + 1000 * (repeat + 1)
        sub_cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, seed=sub))
        parts.append(
            extract(
                sub_cfg,
                stream,
                stream.train,
                "coclr",
                "gallery",
                transform=transform,
                sampler=RandomClip(data.seq_len, data.ds),
            )
        )
    merged = ClipOutputs(
        torch.cat([p.values for p in parts]),
        np.concatenate([p.video for p in parts]),
        np.concatenate([p.window for p in parts]),
        parts[0].labels,
        parts[0].paths,
        parts[0].failed,
    )
    return merged, merged.skipped()


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
        train, skipped[f"{stream.name}_{stream.train.split}"] = _train_features(cfg, stream)
        test = extract(cfg, stream, stream.test, "full", "query")
        skipped[f"{stream.name}_{stream.test.split}"] = test.skipped()
        degenerate = [
            check_degenerate(outputs, f"linear probe {stream.name} {table.split}")
            for outputs, table in ((train, stream.train), (test, stream.test))
        ]
        num_classes = len(stream.train.class_names)
        probe, _ = train_linear_probe(
            train.features,
            train.clip_labels,
            num_classes,
            cfg.linear,
            seed=cfg.runtime.seed,
            device=device,
        )
        with torch.no_grad():
            logits = probe(test.features.to(device)).cpu()
        video_probs, rows = mean_probabilities(logits, test.video)
        accuracy = topk_accuracy(video_probs, test.labels[rows])
        results[stream.name] = {
            **accuracy,
            "videos": len(rows),
            "train_clips": len(train.video),
            "degenerate_features": any(degenerate),
        }
        probs.append((video_probs, stream.test.video_keys()[rows], test.labels[rows]))
        logger.info("linear probe %s: top1 %.2f", stream.name, 100 * accuracy["top1"])
    if len(probs) == 2:
        results["fused"] = fused_topk_accuracy(*probs)
    protocol = clip_protocol_record(cfg, "full")
    protocol.update(
        train_clips=cfg.linear.train_clips,
        test_clips=protocol.pop("query_clips"),
        head="l2 -> batchnorm1d -> linear",
    )
    protocol.pop("gallery_clips")
    return finish(cfg, "linear", streams, protocol, results, skipped, out, name)
