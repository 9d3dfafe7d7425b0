"""PCL's fine-tuning protocol (``ft_classify.py``) and the mean over the three official splits.

`run_pcl_finetune` (``finetune.protocol=pcl``, preset ``pcl_finetune``):

- model: the pretrained backbone → ``Linear(F, classes)`` (no dropout);
- training: one random clip per video per epoch, resize ``img_size·(128, 171)/112`` → random
  ``img_size`` crop, no colour augmentation, no flip; frames on [0, 1] (``normalize_input=false``,
  as the reference, whose pre-training saw normalised clips) turned into the encoder's residual
  clips (``encoder.json``); SGD ``lr`` 1e-3, momentum 0.9, wd 5e-4, batch 8;
- validation: ``val_videos`` training videos (800 UCF101 / 400 HMDB51) drawn with
  ``runtime.seed`` are held out; their mean cross-entropy (one seeded random clip each, training
  transform) steps ``ReduceLROnPlateau(plateau_factor, plateau_patience, min_lr)`` every epoch, and
  the weights of the lowest validation loss are kept;
- test: ``test_clips`` (10) uniformly spaced clips per test video, centre crop; the **logits** are
  averaged per video (`vidssl.eval.finetune.crop_probabilities` of one view), then top-1/top-5.

`run_finetune_splits` runs any fine-tuning protocol on several official splits (a fresh copy of
the encoder each time) and reports every split and their mean (`split_mean`): PCL's tables are
3-split means (author, PCL issue #2: split 1 alone gives 79.9 for the reported 81.1).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidssl.data.sampling import RandomClip, UniformClips
from vidssl.data.transforms.presets import pcl_test, pcl_train
from vidssl.errors import ConfigError
from vidssl.eval.clips import VideoClips, clip_loader
from vidssl.eval.config import EvalConfig
from vidssl.eval.encoders import EvalEncoder
from vidssl.eval.features import resolve_device, run_on_clips
from vidssl.eval.finetune import (
    FinetuneModel,
    clip_epoch,
    crop_probabilities,
    finetune_optimizer,
)
from vidssl.eval.linear import topk_accuracy
from vidssl.utils.io import atomic_write_text

__all__ = ["hold_out", "run_finetune_splits", "run_pcl_finetune", "split_mean"]

logger = logging.getLogger(__name__)


def hold_out(count: int, n_videos: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train rows, val rows)``: ``count`` of ``n_videos`` rows drawn without replacement."""
    if not 0 <= count < n_videos:
        raise ConfigError(f"finetune.val_videos={count} must be in [0, {n_videos}) (train videos)")
    order = np.random.default_rng(seed).permutation(n_videos)
    return np.sort(order[count:]), np.sort(order[:count])


def _resize(size: int) -> tuple[int, int]:
    return round(size * 128 / 112), round(size * 171 / 112)


def _train_best(model: FinetuneModel, stream: Any, cfg: EvalConfig, norm: Any) -> tuple:
    """Trains with plateau lr on the held-out loss; loads the best-val weights.

    Returns:
        ``(best epoch, best val loss, unreadable train paths)``.
    """
    data, runtime, settings = cfg.data, cfg.runtime, cfg.finetune
    device = next(model.parameters()).device
    optimizer = finetune_optimizer(model, settings)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=settings.plateau_factor, patience=settings.plateau_patience,
        min_lr=settings.min_lr,
    )  # fmt: skip
    train_rows, val_rows = hold_out(settings.val_videos, len(stream.train), runtime.seed)
    size = data.img_size
    transform = pcl_train(size, _resize(size), strong=False, normalization=norm)
    sampler = RandomClip(data.seq_len, data.ds)

    def clips(rows: np.ndarray) -> VideoClips:
        return VideoClips(stream.train.subset(rows), sampler, transform, seed=runtime.seed)

    train_set = clips(train_rows)
    loader = clip_loader(train_set, batch_size=data.batch_size, workers=data.workers,
                         shuffle=True, seed=runtime.seed)  # fmt: skip
    val_loader = None
    if len(val_rows):
        val_loader = clip_loader(clips(val_rows), batch_size=data.batch_size, workers=data.workers)
    failed: set[int] = set()
    best_loss, best_state, best_epoch = float("inf"), None, -1
    common = {"spec": stream.encoder.spec, "device": device, "amp": runtime.amp,
              "progress": runtime.progress}  # fmt: skip
    for epoch in range(settings.epochs):
        train_set.set_epoch(epoch)
        loss = clip_epoch(model, loader, optimizer, desc=f"finetune {epoch}", failed=failed,
                          **common)  # fmt: skip
        val_loss = loss if val_loader is None else clip_epoch(model, val_loader, None, **common)
        plateau.step(val_loss)
        logger.info("finetune epoch %d: loss %.4f, val %.4f", epoch, loss, val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return best_epoch, best_loss, sorted(str(train_set.table.paths[r]) for r in failed)


def run_pcl_finetune(cfg: EvalConfig, streams: list[Any]) -> tuple[dict, dict, dict]:
    """Trains and tests every stream with the PCL protocol.

    Args:
        cfg: The settings (``finetune.protocol=pcl``).
        streams: `vidssl.eval.run.load_streams` output (their encoders are trained in place).

    Returns:
        ``(results, skipped, protocol record)`` for `vidssl.eval.run.finish`.
    """
    data, runtime, settings = cfg.data, cfg.runtime, cfg.finetune
    device = resolve_device(runtime.device)
    results: dict[str, Any] = {}
    skipped: dict[str, list[str]] = {}
    for stream in streams:
        spec = stream.encoder.spec
        norm = spec.normalization if settings.normalize_input else "none"
        torch.manual_seed(runtime.seed)
        model = FinetuneModel(stream.encoder.model, len(stream.train.class_names), 0.0).to(device)
        best_epoch, best_loss, failed = _train_best(model, stream, cfg, norm)
        skipped[f"{stream.name}_{stream.train.split}"] = failed
        test_set = VideoClips(
            stream.test,
            UniformClips(settings.test_clips, data.seq_len, data.ds),
            pcl_test(data.img_size, _resize(data.img_size), normalization=norm),
        )
        model.eval()
        outputs = run_on_clips(
            lambda x, model=model: model(x).float(), test_set, spec=spec, batch_size=1,
            workers=data.workers, device=device, amp=runtime.amp,
            forward_batch=runtime.forward_batch, progress=runtime.progress,
            desc=f"test {stream.name}",
        )  # fmt: skip
        logits, rows = crop_probabilities(outputs.values, outputs.video)
        skipped[f"{stream.name}_{stream.test.split}"] = outputs.skipped()
        entry: dict[str, Any] = dict(topk_accuracy(logits["center"], outputs.labels[rows]))
        entry.update(videos=len(rows), best_epoch=best_epoch, best_val_loss=best_loss)
        results[stream.name] = entry
    scale = "normalised" if settings.normalize_input else "[0, 1]"
    protocol = {
        "name": "pcl",
        "train_split": data.train_split,
        "test_split": data.test_split,
        "train_clips": f"one random clip per video per epoch, resize {_resize(data.img_size)} -> "
        f"random {data.img_size} crop, {scale}",
        "val_videos": settings.val_videos,
        "test_clips": f"{settings.test_clips} uniform clips, centre crop, logits averaged",
        "resolution": data.img_size,
        "seq_len": data.seq_len,
        "epochs": settings.epochs,
        "optimizer": settings.optimizer,
        "plateau": {
            "factor": settings.plateau_factor,
            "patience": settings.plateau_patience,
            "min_lr": settings.min_lr,
        },
    }
    return results, skipped, protocol


def split_mean(per_split: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Mean over splits of every float metric of every stream present in all splits.

    Args:
        per_split: ``{split_id: record["results"]}`` (``{stream: {metric: value}}``).

    Returns:
        ``{stream: {metric: mean}}``; integer counts (``videos``) and metrics missing from a
        split are left out.
    """
    records = list(per_split.values())
    if not records:
        raise ConfigError("no split results to average")
    mean: dict[str, dict[str, float]] = {}
    for stream, metrics in records[0].items():
        if not all(stream in record for record in records):
            continue
        values = {
            key: [record[stream].get(key) for record in records]
            for key, value in metrics.items()
            if isinstance(value, float)
        }
        mean[stream] = {
            key: float(np.mean(column))
            for key, column in values.items()
            if all(isinstance(v, float) for v in column)
        }
    return mean


def _fresh(encoder: Any) -> Any:
    """A path or None as is; a loaded encoder deep-copied (each split trains its own copy)."""
    if encoder is None or isinstance(encoder, (str, Path)):
        return encoder
    return copy.deepcopy(encoder)


def run_finetune_splits(
    encoder: str | Path | EvalEncoder,
    config: EvalConfig | str | Path | None,
    splits: Sequence[int],
    *,
    overrides: Sequence[str] = (),
    flow_encoder: Any = None,
    out: str | Path | None = None,
    name: str = "finetune",
    runner: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Fine-tunes and tests once per official split; writes ``<name>_splits.json`` with the mean.

    Each split starts from the pretrained weights (an `EvalEncoder` is copied per split; a path is
    reloaded) and writes its own ``<name>_split<k>.json``.

    Returns:
        ``{"task", "splits": {k: results}, "mean": split_mean(...), "records": {k: record},
        "files": {"json": path}}``.
    """
    from vidssl.eval.finetune import run_finetune
    from vidssl.eval.run import as_config

    if not splits or len(set(splits)) != len(splits):
        raise ConfigError(f"--splits needs distinct split ids, got {list(splits)}")
    runner = runner or run_finetune
    base = as_config(config, overrides)
    records: dict[int, dict[str, Any]] = {}
    for split in splits:
        cfg = as_config(base, [f"data.split_id={split}"])
        records[split] = runner(_fresh(encoder), cfg, flow_encoder=_fresh(flow_encoder),
                                out=out, name=f"{name}_split{split}")  # fmt: skip
    per_split = {k: record["results"] for k, record in records.items()}
    summary = {"task": "finetune", "splits": per_split, "mean": split_mean(per_split)}
    path = Path(out or base.runtime.out) / f"{name}_splits.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(summary, indent=2, default=str) + "\n")
    return {**summary, "records": records, "files": {"json": str(path)}}
