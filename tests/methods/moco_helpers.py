"""Tiny CPU configs, two-view batches and independent re-computations for the MoCo-family tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from vidssl.config.parse import merge_trees, parse_overrides
from vidssl.config.schema import Config
from vidssl.methods.moco import MomentumContrastMethod
from vidssl.methods.registry import config_from_tree

FRAMES, SIZE = 4, 32


def moco_config(method: str = "infonce", *overrides: str, run_dir: Path | None = None) -> Config:
    """R3D-10 at width 1/16 (32-d features), 4×32² clips, batch 4, K=16, 16-d embeddings."""
    tree = {
        "method": {"name": method, "queue_size": 16},
        "data": {"batch_size": 4, "seq_len": FRAMES, "img_size": SIZE, "workers": 0},
        "model": {"backbone": "r3d_10", "width_mult": 0.0625, "proj_dim": 16},
        "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0},
        "trainer": {
            "epochs": 1, "accelerator": "cpu", "devices": "1", "precision": "32",
            "progress_bar_refresh": 0, "log_every_n_steps": 1,
            "run_dir": str(run_dir or "runs/unused"),
        },
    }  # fmt: skip
    return config_from_tree(merge_trees(tree, parse_overrides(list(overrides))))


def two_view_batch(
    batch_size: int = 4,
    seed: int = 0,
    *,
    channels: int = 3,
    labels: list[int] | None = None,
    groups: list[int] | None = None,
) -> dict[str, Any]:
    """Random two-view batch dict (``views``, ``label``, ``index``, ``group``) from a seed."""
    gen = torch.Generator().manual_seed(seed)
    views = [torch.randn(batch_size, channels, FRAMES, SIZE, SIZE, generator=gen) for _ in "qk"]
    return {
        "views": views,
        "label": torch.tensor(labels if labels is not None else list(range(batch_size))),
        "index": torch.arange(batch_size) + 100 * seed,
        "group": torch.tensor(groups if groups is not None else list(range(batch_size))),
    }


def expected_ema(method: MomentumContrastMethod) -> list[torch.Tensor]:
    """``0.999·θ_k + 0.001·θ_q`` for every key-encoder parameter (reference arithmetic)."""
    m = method.cfg.method.momentum
    return [
        pk.detach() * m + pq.detach() * (1 - m)
        for pq, pk in zip(method.encoder_q.parameters(), method.encoder_k.parameters())
    ]


def independent_q_k(
    method: MomentumContrastMethod, batch: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """q and k of a step recomputed on copies taken *before* the step (k with the EMA applied)."""
    encoder_q = copy.deepcopy(method.encoder_q)
    encoder_k = copy.deepcopy(method.encoder_k)
    with torch.no_grad():
        for param, value in zip(encoder_k.parameters(), expected_ema(method)):
            param.copy_(value)
        return encoder_q(batch["views"][0]), encoder_k(batch["views"][1])


class KeySpy:
    """Records every key batch `compute_keys` returns."""

    def __init__(self, method: MomentumContrastMethod) -> None:
        self.keys: list[torch.Tensor] = []
        original = method.compute_keys

        def spy(clips: torch.Tensor) -> torch.Tensor:
            keys = original(clips)
            self.keys.append(keys.detach().clone())
            return keys

        method.compute_keys = spy  # type: ignore[method-assign]


class TwoViewVideos(Dataset):
    """``n`` "videos": fixed random clips; each view adds fresh noise from the global RNG."""

    def __init__(
        self, n: int = 8, noise: float = 0.1, n_classes: int = 2, frames: int = FRAMES
    ) -> None:
        gen = torch.Generator().manual_seed(7)
        self.clips = torch.randn(n, 3, frames, SIZE, SIZE, generator=gen)
        self.noise, self.n_classes = noise, n_classes

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clips[index]
        views = [clip + self.noise * torch.randn_like(clip) for _ in range(2)]
        return {"views": views, "label": index % self.n_classes, "index": index, "group": index}


def shard(batch: dict, rank: int, world: int, global_batch: int) -> dict:
    """Rank ``rank``'s rows of a global batch (list values such as views sliced per item)."""
    size = global_batch // world
    rows = slice(rank * size, (rank + 1) * size)
    return {
        key: [v[rows] for v in value] if isinstance(value, list) else value[rows]
        for key, value in batch.items()
    }


def averaged_gradient_step(
    method: MomentumContrastMethod, optimizer: torch.optim.Optimizer, local: dict, world: int
) -> float:
    """One `contrastive_step` with DDP-style gradient averaging over ``world`` ranks (gloo)."""
    import torch.distributed as dist

    out = method.contrastive_step(local)
    optimizer.zero_grad()
    out["loss"].backward()
    if world > 1:
        for param in method.encoder_q.parameters():
            dist.all_reduce(param.grad)
            param.grad /= world
    optimizer.step()
    return float(out["loss"].detach())
