"""End-to-end fine-tuning and multi-crop testing (CoCLR/ViCC ``--train_what ft``, ``--ten_crop``).

Model: backbone → ``Dropout(0.9)`` → ``Linear`` (N(0, 0.01) weights, zero bias). Training: one
random clip per train video per epoch, random resized crop (area ≥ 0.2) + colour jitter (p=0.3)
+ flip; the backbone's parameter group trains at ``lr × backbone_lr_mult``; the lr of every group
is multiplied by ``gamma`` at each milestone epoch (CoCLR: Adam 1e-3, wd 1e-3, 500 epochs,
[400, 450]; ViCC: SGD 0.1, [200, 300, 400, 450]).

Test: every sliding window of each test video × 10 views (5 crop positions — centre, top-left,
top-right, bottom-left, bottom-right — × {no flip, flip}, each ``crop_size`` → ``img_size``), no
colour jitter. Softmax probabilities are averaged over the windows per view, then over the views:
centre crop = view 0, five-crop = views 0–4, ten-crop = all 10.

This is a plain PyTorch loop rather than `vidssl.train.engine.fit`: the engine trains registered
self-supervised `BaseMethod`s from a pretraining `Config`; fine-tuning is a one-process supervised
loop whose test phase needs per-video multi-crop aggregation, and a plain loop keeps it small.
It has no multi-GPU and no resume (the reference had DataParallel only).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from vidssl.config.schema import OptimConfig
from vidssl.data.sampling import RandomClip, SlidingWindows
from vidssl.data.transforms.presets import coclr_finetune, coclr_multi_crop
from vidssl.errors import UserError
from vidssl.eval.clips import VideoClips, clip_loader
from vidssl.eval.config import EvalConfig, FinetuneSettings
from vidssl.eval.encoders import InputSpec, adapt_input
from vidssl.eval.features import ClipOutputs, resolve_device, run_on_clips
from vidssl.eval.linear import epoch_lr_factor, fused_topk_accuracy, topk_accuracy
from vidssl.optim import build_optimizer, build_param_groups

__all__ = [
    "CROP_VIEWS",
    "FinetuneModel",
    "clip_epoch",
    "crop_probabilities",
    "evaluate_multi_crop",
    "finetune_optimizer",
    "run_finetune",
    "train_finetune",
]

logger = logging.getLogger(__name__)

#: Views averaged by each test mode (MultiCrop order: 5 positions unflipped, then flipped).
CROP_VIEWS = {"center": (0,), "five": (0, 1, 2, 3, 4), "ten": tuple(range(10))}


class FinetuneModel(nn.Module):
    """Backbone → Dropout → Linear classifier."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.9) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(int(backbone.feature_dim), num_classes)
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, num_classes]`` of ``[B, C, T, H, W]`` clips."""
        return self.fc(self.dropout(self.backbone(x)))


def crop_probabilities(
    probs: torch.Tensor, video: np.ndarray
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """Per-video probabilities of each crop mode from per-clip, per-view probabilities.

    Args:
        probs: ``[N, V, K]`` softmax probabilities (N clips, V = 10 views in MultiCrop order).
        video: ``N`` table rows.

    Returns:
        ``({"center"|"five"|"ten": [videos, K]}, rows)``: for each view the mean over the video's
        windows, then the mean over the mode's views (modes needing more views than given are
        left out).
    """
    rows, inverse = np.unique(np.asarray(video), return_inverse=True)
    index = torch.as_tensor(inverse.reshape(-1))
    flat = probs.float().flatten(1)
    sums = flat.new_zeros(len(rows), flat.shape[1]).index_add_(0, index, flat)
    counts = torch.bincount(index, minlength=len(rows)).to(flat.dtype)
    per_view = (sums / counts[:, None]).view(len(rows), probs.shape[1], probs.shape[2])
    modes = {
        mode: per_view[:, list(views)].mean(dim=1)
        for mode, views in CROP_VIEWS.items()
        if len(views) <= probs.shape[1]
    }
    return modes, rows


def finetune_optimizer(model: FinetuneModel, settings: FinetuneSettings) -> torch.optim.Optimizer:
    """``settings.optimizer`` over the model; the backbone group at ``lr·backbone_lr_mult``."""
    cfg = OptimConfig(
        name=settings.optimizer,
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        momentum=settings.momentum,
        lr_mult={"backbone": settings.backbone_lr_mult},
    )
    groups = build_param_groups(model.named_parameters(), cfg)
    for group in groups:
        group["initial_lr"] = group["lr"]
    return build_optimizer(groups, cfg)


def train_finetune(
    model: FinetuneModel,
    dataset: VideoClips,
    settings: FinetuneSettings,
    *,
    spec: InputSpec | None = None,
    batch_size: int | None = None,
    workers: int = 0,
    device: str | torch.device = "cpu",
    amp: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[float], set[int]]:
    """Fine-tunes ``model`` on one clip per video per epoch (``dataset.set_epoch`` per epoch).

    Batches hold ``batch_size`` (default ``settings.batch_size``) videos; with
    ``settings.drop_last`` a last incomplete batch is dropped every epoch (CoCLR).

    Returns:
        ``(head lr of each epoch, table rows of videos that could not be read)``.

    Raises:
        UserError: ``drop_last`` with fewer training videos than one batch (no step at all).
    """
    batch_size = batch_size or settings.batch_size
    if settings.drop_last and len(dataset) < batch_size:
        raise UserError(
            f"finetune.batch_size={batch_size} with finetune.drop_last=true leaves no step for "
            f"{len(dataset)} training videos; lower finetune.batch_size"
        )
    device = resolve_device(device)
    model.to(device)
    optimizer = finetune_optimizer(model, settings)
    loader = clip_loader(
        dataset,
        batch_size=batch_size,
        workers=workers,
        shuffle=True,
        seed=seed,
        drop_last=settings.drop_last,
    )
    head_lrs, failed = [], set()
    for epoch in range(settings.epochs):
        factor = epoch_lr_factor(settings, epoch)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        head_lrs.append(settings.lr * factor)
        dataset.set_epoch(epoch)
        loss = clip_epoch(
            model, loader, optimizer, spec=spec, device=device, amp=amp, progress=progress,
            desc=f"finetune {epoch}", failed=failed,
        )  # fmt: skip
        logger.info("finetune epoch %d: loss %.4f", epoch, loss)
    return head_lrs, failed


def clip_epoch(
    model: nn.Module,
    loader: Any,
    optimizer: torch.optim.Optimizer | None,
    *,
    spec: InputSpec | None,
    device: torch.device,
    amp: bool = False,
    progress: bool = True,
    desc: str = "finetune",
    failed: set[int] | None = None,
) -> float:
    """One pass of cross-entropy over a clip loader (first clip of each video); the mean loss.

    With an ``optimizer`` the model trains (train mode, a step per batch); without, it is only
    evaluated (eval mode, no gradient). Rows of unreadable videos are added to ``failed``.
    """
    labels = torch.as_tensor(loader.dataset.table.labels, dtype=torch.long)
    use_amp = amp and device.type == "cuda"
    model.train(optimizer is not None)
    total, steps = 0.0, 0
    for batch in tqdm(loader, desc=desc, disable=None if progress else True):
        if failed is not None:
            failed.update(row for row, _ in batch.failed)
        if batch.clips is None:
            continue
        x = batch.clips[:, 0].to(device, non_blocking=True)
        x = adapt_input(x, spec) if spec is not None else x
        y = labels[batch.video].to(device)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp)
        with torch.set_grad_enabled(optimizer is not None), autocast:
            loss = F.cross_entropy(model(x).float(), y)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        total, steps = total + float(loss.detach()), steps + 1
    return total / max(steps, 1)


def evaluate_multi_crop(
    model: FinetuneModel, dataset: VideoClips, **kwargs: Any
) -> tuple[dict[str, torch.Tensor], np.ndarray, ClipOutputs]:
    """Softmax of every window × view of the test videos, aggregated per crop mode.

    Args:
        model: The fine-tuned model (put in eval mode here).
        dataset: Test clips with a `MultiCrop` transform.
        **kwargs: `run_on_clips` options (spec, batch_size, workers, device, amp, ...).

    Returns:
        ``(probabilities per mode, table rows, raw per-clip outputs)``.
    """
    model.eval()
    outputs = run_on_clips(lambda x: model(x).float().softmax(-1), dataset, **kwargs)
    modes, rows = crop_probabilities(outputs.values, outputs.video)
    return modes, rows, outputs


def run_finetune(
    encoder: Any,
    config: EvalConfig | str | Path | None = "coclr_finetune",
    *,
    overrides: Sequence[str] = (),
    flow_encoder: Any = None,
    out: str | Path | None = None,
    name: str = "finetune",
) -> dict[str, Any]:
    """Fine-tunes on the train split and tests with centre / 5-crop / 10-crop on the test split.

    With ``finetune.protocol=pcl`` it runs PCL's protocol instead
    (`vidssl.eval.finetune_pcl.run_pcl_finetune`: held-out validation, plateau lr, best-val
    model, 10 uniform clips with averaged logits; results ``top1``, ``top5``).

    Args:
        encoder: Our export directory or an `EvalEncoder` (its weights are trained in place).
        config: `EvalConfig`, eval preset name or YAML path.
        overrides: ``key=value`` settings.
        flow_encoder: Optional flow encoder, fine-tuned separately; adds ``flow`` and ``fused``
            (averaged probabilities of the ``finetune.crops`` mode).
        out: Output directory (default ``runtime.out``).
        name: File stem of the results.

    Returns:
        The result record: ``record["results"]["rgb"]["ten_crop_top1"]`` etc. (fractions).
    """
    from vidssl.eval.run import as_config, finish, load_streams

    cfg = as_config(config, overrides)
    data, runtime, settings = cfg.data, cfg.runtime, cfg.finetune
    streams = load_streams(cfg, encoder, flow_encoder)
    if settings.protocol == "pcl":
        from vidssl.eval.finetune_pcl import run_pcl_finetune

        results, skipped, record = run_pcl_finetune(cfg, streams)
        return finish(cfg, "finetune", streams, record, results, skipped, out, name)
    results: dict[str, Any] = {}
    skipped: dict[str, list[str]] = {}
    fused_inputs = []
    for stream in streams:
        spec = stream.encoder.spec
        torch.manual_seed(runtime.seed)
        model = FinetuneModel(stream.encoder.model, len(stream.train.class_names), settings.dropout)
        train_set = VideoClips(
            stream.train,
            RandomClip(data.seq_len, data.ds),
            coclr_finetune(data.img_size, normalization=spec.normalization),
            seed=runtime.seed,
        )
        common = {"device": runtime.device, "amp": runtime.amp, "workers": data.workers}
        _, failed = train_finetune(
            model,
            train_set,
            settings,
            spec=spec,
            seed=runtime.seed,
            progress=runtime.progress,
            **common,
        )
        skipped[f"{stream.name}_{stream.train.split}"] = [
            str(stream.train.paths[r]) for r in failed
        ]
        flips = settings.crops == "ten"
        views = coclr_multi_crop(
            data.crop_size, data.img_size, flips=flips, normalization=spec.normalization
        )
        test_set = VideoClips(stream.test, SlidingWindows(data.seq_len, data.ds), views)
        modes, rows, outputs = evaluate_multi_crop(
            model,
            test_set,
            spec=spec,
            batch_size=1,
            forward_batch=runtime.forward_batch,
            progress=runtime.progress,
            desc=f"test {stream.name}",
            **common,
        )
        skipped[f"{stream.name}_{stream.test.split}"] = outputs.skipped()
        labels = outputs.labels[rows]
        entry: dict[str, Any] = {}
        for mode, probs in modes.items():
            for metric, value in topk_accuracy(probs, labels).items():
                entry[f"{mode}_crop_{metric}"] = value
        entry["videos"] = len(rows)
        results[stream.name] = entry
        best = modes.get(settings.crops, modes["five"])
        fused_inputs.append((best, stream.test.video_keys()[rows], labels))
    if len(fused_inputs) == 2:
        results["fused"] = fused_topk_accuracy(*fused_inputs)
    stride = SlidingWindows(data.seq_len, data.ds).window_stride
    protocol = {
        "train_split": data.train_split,
        "test_split": data.test_split,
        "train_clips": "one random clip per video per epoch (resized crop, jitter p=0.3, flip)",
        "test_clips": f"all sliding windows (stride {stride})",
        "crops": f"{settings.crops}: 5 positions{' x flip' if flips else ''} "
        f"{data.crop_size} -> {data.img_size}, softmax averaged over windows then crops",
        "resolution": data.img_size,
        "seq_len": data.seq_len,
        "ds": data.ds,
        "optimizer": settings.optimizer,
        "batch_size": settings.batch_size,
        "drop_last": settings.drop_last,
        "epochs": settings.epochs,
        "milestones": list(settings.milestones),
    }
    return finish(cfg, "finetune", streams, protocol, results, skipped, out, name)
