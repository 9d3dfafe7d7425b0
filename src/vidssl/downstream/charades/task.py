"""Charades as a downstream task: config, module (BCE-with-logits), datasets and evaluation.

Data layout under ``data.root`` (either annotation kind, either pixel kind):

- ``frame_lists/{train,val}.csv`` (PySlowFast) or ``Charades_v1_{train,test}.csv`` (official;
  per-frame labels at 24 fps) — ``method.annotations`` = ``frame_lists`` | ``official`` |
  ``auto`` (frame lists when present);
- pixels in ``data.media`` (default ``root/Charades_v1_rgb``): ``<id>/<id>-NNNNNN.jpg`` frame
  folders or ``<id>.mp4`` videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from vidssl.config.schema import Config, MethodConfig
from vidssl.downstream.charades.catalog import CharadesVideo, read_frame_list, read_official_csv
from vidssl.downstream.charades.dataset import CharadesDataset, ClipSettings
from vidssl.downstream.charades.metrics import max_ensemble, mean_ap, per_class_ap
from vidssl.downstream.trainer import (
    DownstreamConfig,
    DownstreamModule,
    DownstreamTask,
    view_batches,
)
from vidssl.errors import ConfigError, DataError
from vidssl.methods.registry import register_method
from vidssl.utils.io import atomic_write_text

SPLIT_FILES = {
    "frame_lists": ("frame_lists/train.csv", "frame_lists/val.csv"),
    "official": ("Charades_v1_train.csv", "Charades_v1_test.csv"),
}


@dataclass
class CharadesConfig(DownstreamConfig):
    """Charades settings on top of `DownstreamConfig` (reference values as defaults).

    ``jitter_min``/``jitter_max``: training short-side range (inverse-uniform draw);
    ``temporal_views`` × ``spatial_views`` test views per video, max-ensembled.
    """

    name: str = "charades"
    annotations: Literal["auto", "frame_lists", "official"] = "auto"
    jitter_min: int = 256
    jitter_max: int = 340
    temporal_views: int = 10
    spatial_views: int = 3


def clip_settings(cfg: Config) -> ClipSettings:
    """The clip geometry of a Charades config."""
    m: CharadesConfig = cfg.method  # type: ignore[assignment]
    return ClipSettings(
        num_frames=cfg.data.seq_len, stride=cfg.data.ds, jitter=(m.jitter_min, m.jitter_max),
        crop=cfg.data.img_size, temporal_views=m.temporal_views, spatial_views=m.spatial_views,
        num_classes=m.num_classes,
    )  # fmt: skip


@register_method("charades")
class CharadesModule(DownstreamModule):
    """R(2+1)D-18 → average pool → dropout 0.5 → ``Linear(512, 157)``, BCE with logits."""

    config_class: ClassVar[type[MethodConfig]] = CharadesConfig

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """Downstream checks plus the view counts and jitter range."""
        super().validate_config(cfg)
        m: CharadesConfig = cfg.method  # type: ignore[assignment]
        if not 1 <= m.jitter_min <= m.jitter_max:
            raise ConfigError(f"method.jitter_min/max={m.jitter_min}/{m.jitter_max} is not a range")
        if m.spatial_views not in (1, 3) or m.temporal_views < 1:
            raise ConfigError("method.spatial_views must be 1 or 3 and temporal_views ≥ 1")

    def task_loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """Mean binary cross-entropy with logits against the multi-hot clip labels."""
        return F.binary_cross_entropy_with_logits(logits, batch["label"].to(logits.dtype))


def _media(cfg: Config) -> Path:
    """``data.media``, else ``root/Charades_v1_rgb`` (frames), else ``root/Charades_v1_480``."""
    if cfg.data.media:
        return Path(cfg.data.media)
    frames = Path(cfg.data.root) / "Charades_v1_rgb"
    videos = Path(cfg.data.root) / "Charades_v1_480"
    return videos if videos.is_dir() and not frames.is_dir() else frames


def _official_counts(media: Path) -> dict[str, int]:
    """Frame counts of the ``<id>/<id>-NNNNNN.jpg`` folders that exist (videos: CSV length)."""
    if not media.is_dir():
        return {}
    return {
        folder.name: sum(1 for _ in folder.glob(f"{folder.name}-*.jpg"))
        for folder in media.iterdir()
        if folder.is_dir()
    }


def load_split(cfg: Config, train: bool) -> list[CharadesVideo]:
    """Reads the split's annotations per ``method.annotations``."""
    m: CharadesConfig = cfg.method  # type: ignore[assignment]
    root = Path(cfg.data.root)
    kind = m.annotations
    if kind == "auto":
        kind = "frame_lists" if (root / SPLIT_FILES["frame_lists"][0]).is_file() else "official"
    path = root / SPLIT_FILES[kind][0 if train else 1]
    if not path.is_file():
        raise DataError(f"Charades {kind} annotation {path} does not exist (data.root={root})")
    if kind == "frame_lists":
        return read_frame_list(path)
    return read_official_csv(path, _official_counts(_media(cfg)))


class CharadesTask(DownstreamTask):
    """Charades datasets and the 30-view max-ensemble mAP evaluation."""

    name: ClassVar[str] = "charades"
    metric: ClassVar[str] = "mAP"

    def datasets(self, cfg: Config) -> tuple[Dataset, Dataset]:
        """Training clips and test views."""
        settings = clip_settings(cfg)
        media = _media(cfg)
        train = CharadesDataset(load_split(cfg, True), media, settings, train=True)
        test = CharadesDataset(load_split(cfg, False), media, settings, train=False)
        return train, test

    @torch.no_grad()
    def evaluate(
        self, model: DownstreamModule, test_data: Dataset, cfg: Config, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Sigmoid scores of every view, max over each video's views, mAP over classes."""
        assert isinstance(test_data, CharadesDataset)
        device = next(model.parameters()).device
        batch_size = cfg.method.eval_batch_size  # type: ignore[attr-defined]
        scores, failed = [], []
        for batch in view_batches(test_data, cfg, batch_size=batch_size):
            scores.append(torch.sigmoid(model(batch["views"][0].to(device)).float()).cpu())
            failed.append(batch["failed"])
        view_scores = torch.cat(scores)
        video = torch.arange(len(test_data)) // test_data.views_per_video
        video_scores = max_ensemble(view_scores, video, len(test_data.videos))
        bad = torch.zeros(len(test_data.videos), dtype=torch.bool)
        bad[video[torch.cat(failed)]] = True
        kept = (~bad).numpy()
        labels = test_data.video_labels()[kept]
        video_scores = video_scores[torch.from_numpy(kept)]
        aps = per_class_ap(video_scores, labels)
        lines = ["class,ap"] + [
            f"{c},{'' if np.isnan(a) else f'{a:.6f}'}" for c, a in enumerate(aps)
        ]
        atomic_write_text(out_dir / "per_class_ap.csv", "\n".join(lines) + "\n")
        s = test_data.settings
        protocol = {
            "clip": f"{s.num_frames}x{s.stride}", "crop": s.crop,
            "views": f"{s.temporal_views}x{s.spatial_views}", "ensemble": "max",
            "test_short_side": s.crop, "train_jitter": list(s.jitter),
        }  # fmt: skip
        results = {
            "mAP": mean_ap(video_scores, labels),
            "classes_evaluated": int((~np.isnan(aps)).sum()),
            "per_class_file": "per_class_ap.csv",
            "videos": int(kept.sum()),
            "skipped": [v.video_id for v, b in zip(test_data.videos, bad.tolist()) if b],
        }
        return results, protocol
