"""Frozen-backbone outputs per clip: pooled features for retrieval / linear probe, logits for tests.

`run_on_clips` runs any ``fn(batch [B, C, T, H, W]) -> [B, D]`` over every view of every clip of a
`VideoClips` dataset (eval mode, ``no_grad``, optional bf16 autocast on CUDA, progress bar) and
returns a `ClipOutputs`; `extract_features` is it with the backbone's pooled features.
`protocol_clips` picks the sampler and the deterministic transform of each retrieval protocol:

======== ======================================= ===========================================
protocol queries (test split)                    gallery (train split)
======== ======================================= ===========================================
coclr    all sliding windows (stride T·ds//2−1)  one random clip per video (seeded)
full     all sliding windows                     all sliding windows
pcl      10 uniform clips                        10 uniform clips
======== ======================================= ===========================================

CoCLR/ViCC clips are the centre ``crop_size`` crop of the frame resized to ``img_size``; PCL clips
are resized to ``img_size·(128/112, 171/112)`` and centre-cropped to ``img_size``. There is no
colour jitter at test time (the references jitter with p=0.3, which makes their numbers random).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vidssl.data.catalogs import VideoTable
from vidssl.data.sampling import ClipSampler, RandomClip, SlidingWindows, UniformClips
from vidssl.data.transforms.compose import Compose
from vidssl.data.transforms.presets import coclr_eval, pcl_test
from vidssl.errors import ConfigError
from vidssl.eval.clips import VideoClips, clip_loader
from vidssl.eval.encoders import EvalEncoder, InputSpec, adapt_input
from vidssl.eval.retrieval import get_protocol
from vidssl.utils.io import atomic_write_bytes

__all__ = [
    "DEGENERATE_SPREAD",
    "ClipOutputs",
    "check_degenerate",
    "extract_features",
    "feature_spread",
    "protocol_clips",
    "resolve_device",
    "run_on_clips",
]

logger = logging.getLogger(__name__)

PCL_CLIPS = 10

# Largest per-dimension std across videos of L2-normalised per-video features below which the
# features are treated as one constant vector (float32 rounding of equal vectors is ~1e-7).
DEGENERATE_SPREAD = 1e-5


@dataclass
class ClipOutputs:
    """Per-clip outputs of one table.

    Attributes:
        values: float32 ``[N, V, D]``: N clips (all readable videos), V views, D outputs.
        video: int64 ``[N]`` table row of each clip.
        window: int64 ``[N]`` position of each clip among its video's clips.
        labels: int64 ``[len(table)]`` (the table's labels, all rows).
        paths: the table's video paths (all rows).
        failed: ``{table row: error}`` of the videos that could not be read (skipped).
    """

    values: torch.Tensor
    video: np.ndarray
    window: np.ndarray
    labels: np.ndarray
    paths: np.ndarray
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def features(self) -> torch.Tensor:
        """``[N, D]`` for single-view outputs."""
        if self.values.shape[1] != 1:
            raise ValueError(f"{self.values.shape[1]} views per clip; use .values")
        return self.values[:, 0]

    @property
    def clip_labels(self) -> np.ndarray:
        """Label of each clip's video, ``[N]``."""
        return self.labels[self.video]

    def windows_per_video(self) -> dict[int, int]:
        """``{table row: number of clips}`` of the readable videos."""
        rows, counts = np.unique(self.video, return_counts=True)
        return dict(zip(rows.tolist(), counts.tolist()))

    def skipped(self) -> list[str]:
        """Paths of the skipped videos."""
        return [str(self.paths[row]) for row in sorted(self.failed)]


def feature_spread(features: torch.Tensor, video: np.ndarray) -> float:
    """Largest per-dimension std across videos of the L2-normalised per-video mean features.

    Each clip's ``[D]`` feature is L2-normalised (``F.normalize``, as the probe and retrieval
    do), averaged per video, and the std over videos is taken per dimension. 0 means every video
    has the same feature; NaN for fewer than two videos.
    """
    rows, inverse = np.unique(np.asarray(video), return_inverse=True)
    if len(rows) < 2:
        return float("nan")
    normed = F.normalize(features.double(), dim=1)
    index = torch.as_tensor(inverse.reshape(-1))
    sums = normed.new_zeros(len(rows), normed.shape[1]).index_add_(0, index, normed)
    means = sums / torch.bincount(index, minlength=len(rows)).to(normed.dtype)[:, None]
    return float(means.std(dim=0).max())


def check_degenerate(outputs: ClipOutputs, desc: str) -> bool:
    """True (and a warning) when the per-video features are (near-)constant across videos.

    Such features make every probe prediction and every retrieval ranking the same for all
    videos, so accuracy and recall sit exactly at chance. A randomly initialised or briefly
    trained backbone in eval mode can do this: e.g. S3D, whose N(0, 0.01) convolutions shrink the
    activations layer by layer while eval-mode BatchNorm (running statistics near their init)
    does not renormalise them, outputs the same ~1e-22 features for any clip.
    """
    spread = feature_spread(outputs.features, outputs.video)
    if not spread < DEGENERATE_SPREAD:  # NaN (one video) is not degenerate
        return False
    logger.warning(
        "%s: features are the same for every video (spread %.1e < %.0e after L2 normalisation); "
        "results will be at chance. The encoder's eval-mode output does not depend on its input "
        "(e.g. an untrained or briefly trained backbone whose BatchNorm running statistics are "
        "still near their init)",
        desc,
        spread,
        DEGENERATE_SPREAD,
    )
    return True


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``auto`` → CUDA when available, else CPU (``ConfigError`` for unknown names)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"device {device!r}: expected auto, cpu, cuda or cuda:N") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return resolved


def protocol_clips(
    protocol: str,
    side: str,
    *,
    seq_len: int = 32,
    ds: int = 1,
    img_size: int = 128,
    crop_size: int = 224,
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | str = "imagenet",
) -> tuple[ClipSampler, Compose]:
    """Sampler and deterministic transform of one side (``query``/``gallery``) of a protocol."""
    get_protocol(protocol)
    if side not in ("query", "gallery"):
        raise ConfigError(f"side {side!r}: expected query or gallery")
    if protocol == "pcl":
        resize = (round(img_size * 128 / 112), round(img_size * 171 / 112))
        return UniformClips(PCL_CLIPS, seq_len, ds), pcl_test(
            img_size, resize, normalization=normalization
        )
    transform = coclr_eval(crop_size, img_size, normalization=normalization)
    if protocol == "coclr" and side == "gallery":
        return RandomClip(seq_len, ds), transform
    return SlidingWindows(seq_len, ds), transform


def _autocast(device: torch.device, amp: bool) -> Any:
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def run_on_clips(
    fn: Callable[[torch.Tensor], torch.Tensor],
    dataset: VideoClips,
    *,
    spec: InputSpec | None = None,
    batch_size: int = 4,
    workers: int = 0,
    device: str | torch.device | None = "cpu",
    amp: bool = False,
    forward_batch: int = 64,
    progress: bool = True,
    desc: str = "clips",
) -> ClipOutputs:
    """Applies ``fn`` to every view of every clip (``no_grad``; ``fn`` sets its own mode).

    Args:
        fn: ``[B, C, T, H, W]`` on ``device`` → ``[B, D]``.
        dataset: The clips.
        spec: Input contract (channel order / flow channels); None feeds the clips as they are.
        batch_size: Videos per loader batch.
        workers: DataLoader worker processes.
        device: Where ``fn`` runs.
        amp: bf16 autocast on CUDA.
        forward_batch: Clip-views per forward call.
        progress: Show a progress bar.
        desc: Progress bar label.

    Returns:
        The outputs, float32 on the CPU; unreadable videos in ``failed``.
    """
    device = resolve_device(device)
    loader = clip_loader(
        dataset, batch_size=batch_size, workers=workers, pin_memory=device.type == "cuda"
    )
    values, videos, windows, failed = [], [], [], {}
    bar = tqdm(loader, desc=desc, unit="batch", disable=None if progress else True)
    with torch.no_grad(), _autocast(device, amp):
        for batch in bar:
            failed.update(dict(batch.failed))
            if batch.clips is None:
                continue
            n, v = batch.clips.shape[:2]
            flat = batch.clips.flatten(0, 1)
            outs = []
            for start in range(0, len(flat), forward_batch):
                x = flat[start : start + forward_batch].to(device, non_blocking=True)
                x = adapt_input(x, spec) if spec is not None else x
                outs.append(fn(x).float().cpu())
            values.append(torch.cat(outs).view(n, v, -1))
            videos.append(batch.video.numpy())
            windows.append(batch.window.numpy())
    table = dataset.table
    if failed:
        logger.warning("%s: skipped %d unreadable videos", desc, len(failed))
    if not values:
        empty = np.zeros(0, dtype=np.int64)
        return ClipOutputs(torch.zeros(0, 1, 0), empty, empty, table.labels, table.paths, failed)
    return ClipOutputs(
        torch.cat(values),
        np.concatenate(videos),
        np.concatenate(windows),
        table.labels,
        table.paths,
        failed,
    )


def _save_outputs(path: Path, outputs: ClipOutputs, key: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"key": key, **vars(outputs)}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_outputs(path: Path, key: dict[str, Any]) -> ClipOutputs | None:
    if not path.is_file():
        return None
    data = torch.load(path, weights_only=False, map_location="cpu")
    if data.pop("key", None) != key:
        logger.info("feature cache %s was made with other settings; recomputing", path)
        return None
    logger.info("reusing cached features %s", path)
    return ClipOutputs(**data)


def extract_features(
    encoder: EvalEncoder,
    table: VideoTable,
    sampler: ClipSampler,
    transform: Compose,
    *,
    seed: int = 0,
    batch_size: int = 4,
    workers: int = 0,
    device: str | torch.device | None = "cpu",
    amp: bool = False,
    forward_batch: int = 64,
    progress: bool = True,
    cache: str | Path | None = None,
    cache_key: dict[str, Any] | None = None,
    conv_features: bool = False,
) -> ClipOutputs:
    """Pooled backbone features of every clip of ``table`` (frozen, eval mode).

    Args:
        encoder: The encoder (`load_eval_encoder`).
        table: The videos.
        sampler: Clips per video (see `protocol_clips`).
        transform: Deterministic clip transform.
        seed: Seed of random samplers (the coclr gallery clip).
        batch_size: Videos per loader batch.
        workers: DataLoader workers.
        device: ``cpu``, ``cuda``, ``auto``...
        amp: bf16 autocast on CUDA.
        forward_batch: Clips per forward call.
        progress: Progress bar.
        cache: A ``.pt`` file: reused when it was made with the same ``cache_key``, else written.
        cache_key: What identifies the features (encoder hash, protocol, sizes...).
        conv_features: Use the backbone's ``forward_retrieval`` (the PCL/VCP conv feature: last
            map → MaxPool(1,2,2) → flatten, 9216-d for 16×112² clips) where it has one (VCOP
            nets); other backbones give their pooled features (R3D-18: 512-d, as PCL).

    Returns:
        `ClipOutputs` with ``values [N, 1, feature_dim]``.
    """
    key = {
        "conv_features": conv_features,
        "videos": table.paths.tolist(),
        "sampler": repr(sampler),
        "transform": repr(transform),
        "seed": seed,
        **(cache_key or {}),
    }
    if cache is not None:
        cached = _load_outputs(Path(cache), key)
        if cached is not None:
            return cached
    resolved = resolve_device(device)
    model = encoder.model.to(resolved).eval()
    dataset = VideoClips(table, sampler, transform, seed=seed)
    forward = getattr(model, "forward_retrieval", model) if conv_features else model
    outputs = run_on_clips(
        forward,
        dataset,
        spec=encoder.spec,
        batch_size=batch_size,
        workers=workers,
        device=resolved,
        amp=amp,
        forward_batch=forward_batch,
        progress=progress,
        desc=f"features {table.split}",
    )
    if cache is not None:
        _save_outputs(Path(cache), outputs, key)
    return outputs
