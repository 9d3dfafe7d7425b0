"""AVA v2.2 as a downstream task on the shared SEVERE trainer: config, module, datasets, test.

Data layout under ``data.root`` (as the reference, see ``docs/downstream_ava.md``):
``method.frames`` (``frames/<vid>/<vid>_%06d.jpg``) and ``method.annotations`` (box CSVs, label
map, exclusions, ``train.csv`` / ``val.csv`` frame lists).

The module is the backbone (strictly loaded from ``method.init``) with the `AvaRoIHead`; a
training step is ``ava_loss(model(clip, boxes), labels)`` on `ava_collate` batches. The final
test predicts every detected val box of every second (full frame, short side ``data.img_size``),
turns the sigmoid scores into one detection per label-map class (`detection_rows`) and scores them
against the full val GT (`evaluate_predictions`: frame-mAP@0.5, exclusions applied).

Presets live in ``config/presets/downstream/ava/`` (`load_ava_config`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vidssl.config.schema import Config, MethodConfig
from vidssl.data.catalogs.ava import read_box_csv, read_exclusions, read_labelmap
from vidssl.downstream.ava.dataset import AvaClipSpec, AvaDataset, ava_collate, build_ava_dataset
from vidssl.downstream.ava.head import NUM_CLASSES, AvaRoIHead, ava_loss
from vidssl.downstream.ava.predictions import (
    detection_rows,
    evaluate_predictions,
    write_detections_csv,
)
from vidssl.downstream.trainer import (
    DownstreamConfig,
    DownstreamModule,
    DownstreamTask,
    view_batches,
)
from vidssl.errors import ConfigError, DataError
from vidssl.methods.registry import register_method
from vidssl.train.loader import build_train_loader
from vidssl.utils.io import atomic_write_text

#: Output files of the final test, under ``trainer.run_dir``.
DETECTIONS_FILE = "detections.csv"
PER_CLASS_FILE = "per_class_ap.csv"


@dataclass
class AvaConfig(DownstreamConfig):
    """AVA settings on top of `DownstreamConfig` (SEVERE reference values as defaults).

    Clip geometry comes from ``data``: ``seq_len`` frames at stride ``ds``, crop / test short side
    ``img_size``. ``frames`` / ``annotations``: folders under ``data.root``. ``jitter_min`` /
    ``jitter_max``: train short-side range; ``flip_probability``: train flip. ``score_threshold``:
    detector boxes kept (column 8 ≥ it); ``gt_copy_as_predicted``: the reference's second read of
    the GT CSV as a predicted list (no effect on the boxes, see the docs). ``roi_resolution``,
    ``spatial_scale``, ``sampling_ratio``, ``aligned``: the RoIAlign of the head. ``labelmap``,
    ``groundtruth``, ``exclusions``: evaluation files in ``annotations`` (``exclusions`` may be
    null). ``precise_bn_batches`` must stay 0 (the reference does not recompute BN statistics).
    """

    name: str = "ava"
    num_classes: int = NUM_CLASSES
    reference_batch: int = 32
    precise_bn_batches: int = 0
    eval_batch_size: int = 1
    frames: str = "frames"
    annotations: str = "annotations"
    jitter_min: int = 256
    jitter_max: int = 320
    flip_probability: float = 0.5
    score_threshold: float = 0.9
    gt_copy_as_predicted: bool = True
    full_test_on_val: bool = False
    roi_resolution: int = 7
    spatial_scale: float = 0.0625
    sampling_ratio: int = 0
    aligned: bool = True
    labelmap: str = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    groundtruth: str = "ava_val_v2.2.csv"
    exclusions: str | None = "ava_val_excluded_timestamps_v2.2.csv"


def load_ava_config(
    preset: str, overrides: Sequence[str] = (), init: str | None = None
) -> Config:
    """Preset ``downstream/ava/<preset>`` (an init name or ``tiny``) with ``key=value`` overrides.

    ``init`` sets ``method.init`` (and TCLR's backbone, ``r2plus1d_18_tclr``) before the
    overrides, for presets that take any init (``tiny``; ``scratch`` for ``vidssl`` encoders).

    Raises:
        ConfigError: An unknown preset or key, or a bad value.
    """
    from vidssl.methods.registry import load_config

    first = []
    if init is not None:
        first.append(f"method.init={init}")
        if init.lower() == "tclr":
            first.append("model.backbone=r2plus1d_18_tclr")
    return load_config(f"downstream/ava/{preset}", [*first, *overrides])


def clip_spec(cfg: Config) -> AvaClipSpec:
    """The clip sampling and augmentation settings of an AVA config."""
    m: AvaConfig = cfg.method  # type: ignore[assignment]
    return AvaClipSpec(
        num_frames=cfg.data.seq_len, stride=cfg.data.ds, crop_size=cfg.data.img_size,
        jitter=(m.jitter_min, m.jitter_max), flip_probability=m.flip_probability,
    )  # fmt: skip


@register_method("ava")
class AvaModule(DownstreamModule):
    """R(2+1)D-18 → time average → RoIAlign 7×7 → max-pool → dropout → ``Linear(512, 80)``."""

    config_class: ClassVar[type[MethodConfig]] = AvaConfig

    def build_head(self, feature_dim: int) -> None:
        """The `AvaRoIHead` on the backbone's last feature map."""
        m: AvaConfig = self.cfg.method  # type: ignore[assignment]
        self.head = AvaRoIHead(
            feature_dim, m.num_classes, m.roi_resolution, m.spatial_scale, m.sampling_ratio,
            m.aligned, m.dropout,
        )  # fmt: skip

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """Downstream checks plus the AVA ranges."""
        super().validate_config(cfg)
        m: AvaConfig = cfg.method  # type: ignore[assignment]
        if m.num_classes != NUM_CLASSES:
            raise ConfigError(f"method.num_classes={m.num_classes}: AVA v2.2 has {NUM_CLASSES}")
        if not 1 <= m.jitter_min <= m.jitter_max:
            raise ConfigError(f"method.jitter_min/max={m.jitter_min}/{m.jitter_max} is not a range")
        if not (0 <= m.flip_probability <= 1 and 0 <= m.score_threshold <= 1):
            raise ConfigError("method.flip_probability and score_threshold must be in [0, 1]")
        if m.precise_bn_batches != 0:
            raise ConfigError(
                "method.precise_bn_batches must be 0 for AVA (precise BN is off in the reference "
                "and not implemented for box batches)"
            )
        if m.roi_resolution < 1 or m.spatial_scale <= 0 or m.sampling_ratio < 0:
            raise ConfigError("method.roi_resolution ≥ 1, spatial_scale > 0, sampling_ratio ≥ 0")
        if m.eval_batch_size < 1:
            raise ConfigError(f"method.eval_batch_size={m.eval_batch_size} must be ≥ 1")

    def forward(self, clips: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Logits ``[K, 80]`` for clips ``B×C×T×H×W`` and boxes ``[K, 5]`` (batch index, pixels)."""
        return self.head(self.backbone.forward_map(clips), boxes)

    def task_loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """Mean binary cross-entropy of the per-box logits against the multi-hot box labels."""
        return ava_loss(logits, batch["labels"])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        """One step on an `ava_collate` batch."""
        return {"loss": self.task_loss(self(batch["clip"], batch["boxes"]), batch)}


class TrainKeyframes(Dataset):
    """Train keyframes whose augmentation follows the loader's per-item seed.

    `AvaDataset` draws its augmentation from ``default_rng([seed, epoch, index])``; the trainer's
    `vidssl.train.loader.SeededItems` seeds numpy per ``(seed, epoch, position)`` before each
    item, so this wrapper sets ``epoch`` from that seeded state: a new draw every epoch, the same
    draw after an exact resume and for any worker count. It also exposes ``failures()`` /
    ``failed_videos()`` for the engine's skipped-video report.
    """

    def __init__(self, dataset: AvaDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, object]:
        self.dataset.epoch = int(np.random.randint(2**31))
        return self.dataset[index]

    def failures(self) -> int:
        """Number of unreadable train videos met so far (in this process)."""
        return self.dataset.failures.count()

    def failed_videos(self) -> list[str]:
        """Names of the unreadable train videos met so far."""
        return self.dataset.failures.failed_videos()


def _dataset(cfg: Config, split: str) -> AvaDataset:
    m: AvaConfig = cfg.method  # type: ignore[assignment]
    return build_ava_dataset(
        cfg.data.root, split, clip_spec(cfg), seed=cfg.trainer.seed,
        full_test_on_val=m.full_test_on_val, gt_copy_as_predicted=m.gt_copy_as_predicted,
        score_threshold=m.score_threshold, frames=m.frames, annotations=m.annotations,
    )  # fmt: skip


def _annotation(cfg: Config, name: str) -> Path:
    m: AvaConfig = cfg.method  # type: ignore[assignment]
    path = Path(cfg.data.root) / m.annotations / name
    if not path.is_file():
        raise DataError(f"AVA evaluation file {path} does not exist (data.root={cfg.data.root})")
    return path


@torch.no_grad()
def predict_boxes(
    model: AvaModule, data: AvaDataset, cfg: Config
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Sigmoid class scores of every box of ``data``, in dataset order.

    Returns:
        ``(videos, seconds, boxes, scores)``: per box its video id, keyframe second, normalised
        ``x1, y1, x2, y2`` as read (``[K, 4]``) and class probabilities (``[K, 80]``).
    """
    device = next(model.parameters()).device
    batch_size = cfg.method.eval_batch_size  # type: ignore[attr-defined]
    videos: list[str] = []
    seconds, boxes, scores = [], [], []
    for batch in view_batches(data, cfg, batch_size=batch_size, collate_fn=ava_collate):
        logits = model(batch["clip"].to(device), batch["boxes"].to(device))
        scores.append(torch.sigmoid(logits.float()).cpu().numpy())
        boxes.append(batch["ori_boxes"].numpy())
        meta = batch["metadata"].numpy()
        videos += [data.frame_list.videos[v] for v in meta[:, 0].tolist()]
        seconds.append(meta[:, 1])
    return videos, np.concatenate(seconds), np.concatenate(boxes), np.concatenate(scores)


def _per_class_lines(per_class: dict[int, float], names: dict[int, str]) -> list[str]:
    lines = ["class,name,ap"]
    for class_id, ap in per_class.items():
        lines.append(f"{class_id},{names[class_id]},{'' if math.isnan(ap) else f'{ap:.6f}'}")
    return lines


class AvaTask(DownstreamTask):
    """AVA datasets (train keyframes, full-frame val test) and the frame-mAP@0.5 test."""

    name: ClassVar[str] = "ava"
    metric: ClassVar[str] = "mAP"

    def datasets(self, cfg: Config) -> tuple[Dataset, Dataset]:
        """Train keyframes (GT + detector boxes, augmented) and test keyframes (every second)."""
        return TrainKeyframes(_dataset(cfg, "train")), _dataset(cfg, "test")

    def train_loader(self, train_data: Dataset, cfg: Config) -> Dataset | DataLoader:
        """A resumable loader that batches boxes with `ava_collate`."""
        return build_train_loader(train_data, cfg, collate_fn=ava_collate)

    def evaluate(
        self, model: DownstreamModule, test_data: Dataset, cfg: Config, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Predicts every test box, writes the detections CSV and per-class APs, scores them."""
        assert isinstance(test_data, AvaDataset) and isinstance(model, AvaModule)
        m: AvaConfig = cfg.method  # type: ignore[assignment]
        labelmap = read_labelmap(_annotation(cfg, m.labelmap))
        groundtruth = read_box_csv(_annotation(cfg, m.groundtruth))
        exclusions = read_exclusions(_annotation(cfg, m.exclusions) if m.exclusions else None)
        videos, seconds, boxes, scores = predict_boxes(model, test_data, cfg)
        rows = detection_rows(videos, seconds, boxes, scores, labelmap.ids)
        write_detections_csv(out_dir / DETECTIONS_FILE, rows)
        metrics = evaluate_predictions(labelmap, groundtruth, rows, exclusions)
        per_class: dict[int, float] = metrics["per_class"]  # type: ignore[assignment]
        lines = _per_class_lines(per_class, labelmap.name_of())
        atomic_write_text(out_dir / PER_CLASS_FILE, "\n".join(lines) + "\n")
        results = {
            "mAP": float(metrics["mAP"]),  # type: ignore[arg-type]
            "per_class": {str(c): None if math.isnan(ap) else ap for c, ap in per_class.items()},
            "classes_evaluated": sum(not math.isnan(ap) for ap in per_class.values()),
            "per_class_file": PER_CLASS_FILE,
            "detections_file": DETECTIONS_FILE,
            "keyframes": len(test_data),
            "boxes": len(boxes),
            "detections": len(rows),
            "excluded_keyframes": len(exclusions),
            "videos": len(set(videos)),
            "skipped": [],
        }
        s = test_data.spec
        protocol = {
            "clip": f"{s.num_frames}x{s.stride}", "test_short_side": s.crop_size,
            "test_frame": "full", "train_jitter": list(s.jitter), "train_crop": s.crop_size,
            "groundtruth": m.groundtruth, "iou": 0.5, "classes": len(labelmap.ids),
            "score_threshold": m.score_threshold,
        }  # fmt: skip
        return results, protocol
