"""A tiny registered method and dataset that exercise every engine feature on CPU in milliseconds.

The method has BatchNorm (running stats), dropout and a random noise term (global torch RNG), a
queue buffer (state dict) and non-tensor extra state; the dataset augments with the global numpy
RNG. Any slip in restoring RNGs, data order, optimiser, scheduler or buffers changes the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from vidssl.config.parse import merge_trees, parse_overrides
from vidssl.config.schema import Config, MethodConfig
from vidssl.methods.base import BaseMethod
from vidssl.methods.registry import config_from_tree, register_method


@dataclass
class ToyConfig(MethodConfig):
    name: str = "toy"
    hidden: int = 8
    dropout: float = 0.25
    queue_size: int = 8
    nan_steps: list[int] = field(default_factory=list)
    nan_rank: int = -1  # ≥ 0: only this rank's loss turns non-finite at nan_steps


@register_method("toy")
class ToyMethod(BaseMethod):
    config_class = ToyConfig

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        m = cfg.method
        self.backbone = nn.Sequential(
            nn.Linear(4, m.hidden), nn.BatchNorm1d(m.hidden), nn.ReLU(), nn.Dropout(m.dropout)
        )
        self.head = nn.Linear(m.hidden, 1)
        self.register_buffer("queue", torch.zeros(m.queue_size, m.hidden))
        self.enqueued = 0
        self.seen_indices: list[int] = []

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        feats = self.backbone(batch["x"])
        mse = F.mse_loss(self.head(feats).squeeze(1), batch["y"])
        loss = mse + 1e-3 * (feats @ self.queue.t()).pow(2).mean() + 1e-3 * torch.randn(())
        with torch.no_grad():
            n = min(len(feats), self.queue.shape[0])
            self.queue = torch.roll(self.queue, n, 0)
            self.queue[:n] = feats[:n].detach()
            self.enqueued += n
        nan_rank = self.cfg.method.nan_rank
        if self.global_step in self.cfg.method.nan_steps and nan_rank in (-1, self.global_rank):
            loss = loss * float("nan")
        self.seen_indices.extend(batch["index"].tolist())
        return {"loss": loss, "mse": mse}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        mse = F.mse_loss(self.head(self.backbone(batch["x"])).squeeze(1), batch["y"])
        self.log("val/mse", mse, on_epoch=True, batch_size=len(batch["x"]))

    def extra_state(self) -> dict[str, Any]:
        return {"enqueued": self.enqueued}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.enqueued = state.get("enqueued", 0)


class ToyDataset(Dataset):
    """``n`` random regression samples, augmented with numpy's global RNG."""

    def __init__(self, n: int = 24) -> None:
        gen = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 4, generator=gen)
        self.y = self.x.sum(1) + 0.1 * torch.randn(n, generator=gen)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, Any]:
        jitter = torch.from_numpy(np.random.normal(0.0, 0.1, 4).astype(np.float32))
        return {"x": self.x[index] + jitter, "y": self.y[index], "index": index}


def toy_config(run_dir: Path, *overrides: str) -> Config:
    """A CPU config for the toy method; ``overrides`` are ``key=value`` strings."""
    tree = {
        "method": {"name": "toy"},
        "data": {"batch_size": 4, "workers": 0},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
        "schedule": {"name": "cosine", "warmup_epochs": 1, "min_lr": 0.001},
        "trainer": {
            "epochs": 3, "accelerator": "cpu", "devices": "1", "precision": "32",
            "run_dir": str(run_dir), "progress_bar_refresh": 0, "log_every_n_steps": 1,
            "checkpoint_every_n_epochs": 1,
        },
    }  # fmt: skip
    return config_from_tree(merge_trees(tree, parse_overrides(list(overrides))))


@dataclass
class ToyVariantConfig(ToyConfig):
    name: str = "toy_variant"


@register_method("toy_variant")
class ToyVariant(ToyMethod):
    """Adds a term on top of `ToyMethod.training_step` through ``super()`` (nested wrapping)."""

    config_class = ToyVariantConfig

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        outputs = super().training_step(batch, batch_idx)
        outputs["loss"] = outputs["loss"] + 0.0 * outputs["mse"]
        outputs["extra"] = 1.0
        return outputs
