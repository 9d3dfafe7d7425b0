"""Pretrain checkpoints, two-stream batches and datasets for the CoCLR / CPR / CVTCL tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tests.methods.moco_helpers import FRAMES, SIZE, TwoViewVideos, moco_config, two_view_batch

from vidssl.config.schema import Config
from vidssl.methods.registry import build_method


def write_infonce_checkpoint(path: Path, seed: int, *overrides: str) -> Path:
    """A tiny InfoNCE state dict (seeded, encoder_q ≠ encoder_k) saved like a Lightning ckpt."""
    method = build_method(moco_config("infonce", f"trainer.seed={seed}", *overrides))
    with torch.no_grad():
        for param in method.encoder_k.parameters():
            param.add_(1.0)  # the key encoder must never be what gets loaded
    torch.save({"state_dict": method.state_dict(), "epoch": 3}, path)
    return path


def pretrain_pair(tmp_path: Path, *overrides: str) -> tuple[Path, Path]:
    """Checkpoints A (seed 11) and B (seed 22) of the same tiny architecture."""
    return (
        write_infonce_checkpoint(tmp_path / "a.ckpt", 11, *overrides),
        write_infonce_checkpoint(tmp_path / "b.ckpt", 22, *overrides),
    )


def coclr_config(
    method: str, pair: tuple[Path, Path], *overrides: str, run_dir: Path | None = None
) -> Config:
    """`moco_config` for a two-stream method with ``method.pretrain`` set to ``pair``."""
    return moco_config(
        method, f"method.pretrain=[{pair[0]},{pair[1]}]", *overrides, run_dir=run_dir
    )


def two_stream_batch(
    batch_size: int = 4, seed: int = 0, frames: int = FRAMES, **kwargs: Any
) -> dict[str, Any]:
    """`two_view_batch` plus ``flow_views`` (independent random clips) of ``frames`` frames."""
    batch = two_view_batch(batch_size, seed, **kwargs)
    gen = torch.Generator().manual_seed(1000 + seed)
    shape = (batch_size, 3, frames, SIZE, SIZE)
    batch["views"] = [torch.randn(shape, generator=gen) for _ in "qk"]
    batch["flow_views"] = [torch.randn(shape, generator=gen) for _ in "qk"]
    return batch


class TwoStreamVideos(TwoViewVideos):
    """`TwoViewVideos` with flow clips (the RGB clip negated plus noise) and source groups."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = super().__getitem__(index)
        item["flow_views"] = [-view + 0.1 * torch.randn_like(view) for view in item["views"]]
        item["group"] = index // 2  # two clips per source video
        return item
