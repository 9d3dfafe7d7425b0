"""Video-cloze operations (VCP) as pure, batched tensor functions on ``B×C×T×H×W`` clips.

Labels (`vidssl.data.vcp_tuples.CLOZE_CLASSES`): 0 none; 1 spatial rotation ``rot90`` over
(H, W) by ``k·90°``; 2 the fixed quadrant permutation ``AB/CD → DC/BA`` (quadrant contents are
not rotated); 3 swap of two distinct ``T/4``-frame chunks; 4 the remote clip replaces the middle
clip. The random parameters (``k``, the chunk pair) come with the batch (drawn by the dataset),
so the operations are deterministic functions of their inputs and run wherever the batch is.
"""

from __future__ import annotations

import torch

from vidssl.errors import ConfigError

__all__ = ["apply_cloze", "quadrant_permutation", "rotate_batch", "swap_chunks"]


def rotate_batch(clips: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotates clip ``b`` by ``k[b]·90°`` (``torch.rot90`` over H, W; needs H = W)."""
    if clips.shape[-1] != clips.shape[-2]:
        raise ConfigError(f"cloze rotation needs square frames, got {tuple(clips.shape[-2:])}")
    out = clips.clone()
    for turns in (1, 2, 3):
        rows = torch.nonzero(k.to(clips.device) % 4 == turns).flatten()
        if rows.numel():
            out[rows] = torch.rot90(clips[rows], turns, dims=(-2, -1))
    return out


def quadrant_permutation(clips: torch.Tensor) -> torch.Tensor:
    """Quadrants ``A B / C D`` (split at ``H//2``, ``W//2``; even sizes) become ``D C / B A``."""
    height, width = clips.shape[-2:]
    if height % 2 or width % 2:
        raise ConfigError(f"quadrant permutation needs even frame sizes, got {height}x{width}")
    h, w = height // 2, width // 2
    a, b = clips[..., :h, :w], clips[..., :h, w:]
    c, d = clips[..., h:, :w], clips[..., h:, w:]
    return torch.cat([torch.cat([d, c], dim=-1), torch.cat([b, a], dim=-1)], dim=-2)


def swap_chunks(clips: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Swaps chunks ``pairs[b, 0]`` and ``pairs[b, 1]`` of the 4 equal time chunks of clip ``b``.

    Args:
        clips: ``B×C×T×H×W`` with ``T`` divisible by 4.
        pairs: int64 ``[B, 2]`` chunk ids in 0..3 (equal ids leave the clip unchanged).
    """
    frames = clips.shape[2]
    if frames % 4:
        raise ConfigError(f"chunk swap needs T divisible by 4, got {frames}")
    size = frames // 4
    pairs = pairs.to(clips.device)
    chunk = torch.arange(frames, device=clips.device) // size  # [T]
    offset = torch.arange(frames, device=clips.device) % size
    first, second = pairs[:, :1], pairs[:, 1:]  # [B, 1]
    source_chunk = torch.where(
        chunk == first, second, torch.where(chunk == second, first, chunk.expand(len(pairs), -1))
    )
    index = source_chunk * size + offset  # [B, T]
    return clips.gather(2, index[:, None, :, None, None].expand_as(clips))


def apply_cloze(
    middle: torch.Tensor,
    remote: torch.Tensor,
    labels: torch.Tensor,
    rot_k: torch.Tensor,
    swap: torch.Tensor,
) -> torch.Tensor:
    """The middle clips after each sample's cloze operation.

    Args:
        middle: ``B×C×T×H×W`` middle clips of the tuples.
        remote: ``B×C×T×H×W`` remote clips (read only where ``labels == 4``).
        labels: int ``[B]`` cloze classes 0–4.
        rot_k: int ``[B]`` quarter turns for class 1.
        swap: int64 ``[B, 2]`` chunk pair for class 3.

    Returns:
        The modified middle clips (a new tensor).
    """
    labels = labels.to(middle.device)
    ops = {
        1: lambda rows: rotate_batch(middle[rows], rot_k.to(middle.device)[rows]),
        2: lambda rows: quadrant_permutation(middle[rows]),
        3: lambda rows: swap_chunks(middle[rows], swap.to(middle.device)[rows]),
        4: lambda rows: remote[rows],
    }
    out = middle.clone()
    for label, op in ops.items():
        rows = torch.nonzero(labels == label).flatten()
        if rows.numel():
            out[rows] = op(rows)
    return out
