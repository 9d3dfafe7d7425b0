"""Two-stream (RGB + flow) late fusion (CoCLR ``merge_2stream_prob.py``).

Classification: the class probabilities of the two streams are averaged, ``(p_rgb + p_flow) / 2``.
Retrieval: the two ``[Q, G]`` similarity matrices, each computed after its stream's own protocol
preprocessing, are summed. Rows (and columns) are first aligned by video id, keeping the videos
both streams have (a video unreadable in one stream is left out of the fused numbers).
"""

from __future__ import annotations

import numpy as np
import torch

from vidssl.errors import UserError

__all__ = ["align_ids", "fuse_probabilities", "fuse_similarities"]


def align_ids(ids_a: np.ndarray, ids_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(in a, in b)`` of the ids both hold, in the order of ``ids_a``."""
    where_b = {key: i for i, key in enumerate(np.asarray(ids_b).tolist())}
    rows_a = [i for i, key in enumerate(np.asarray(ids_a).tolist()) if key in where_b]
    rows_b = [where_b[np.asarray(ids_a)[i].item()] for i in rows_a]
    return np.asarray(rows_a, dtype=np.int64), np.asarray(rows_b, dtype=np.int64)


def fuse_probabilities(
    probs_rgb: torch.Tensor, probs_flow: torch.Tensor, ids_rgb: np.ndarray, ids_flow: np.ndarray
) -> tuple[torch.Tensor, np.ndarray]:
    """Averages per-video class probabilities of two streams.

    Args:
        probs_rgb: ``[V1, K]`` probabilities of the first stream.
        probs_flow: ``[V2, K]`` of the second.
        ids_rgb: ``V1`` video ids.
        ids_flow: ``V2`` video ids.

    Returns:
        ``([V, K] averaged probabilities, ids [V])`` over the videos both streams scored.
    """
    if probs_rgb.shape[1] != probs_flow.shape[1]:
        raise UserError(
            f"streams disagree on classes: {probs_rgb.shape[1]} vs {probs_flow.shape[1]}"
        )
    a, b = align_ids(ids_rgb, ids_flow)
    return (probs_rgb[a] + probs_flow[b]) / 2, np.asarray(ids_rgb)[a]


def fuse_similarities(
    sim_rgb: torch.Tensor,
    sim_flow: torch.Tensor,
    query_ids: tuple[np.ndarray, np.ndarray],
    gallery_ids: tuple[np.ndarray, np.ndarray],
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Sums two ``[Q, G]`` similarity matrices after aligning their rows and columns by id.

    Args:
        sim_rgb: First stream's similarities.
        sim_flow: Second stream's similarities.
        query_ids: ``(rgb query ids, flow query ids)``.
        gallery_ids: ``(rgb gallery ids, flow gallery ids)``.

    Returns:
        ``(fused [Q, G], query ids [Q], gallery ids [G])`` over the common videos.
    """
    qa, qb = align_ids(*query_ids)
    ga, gb = align_ids(*gallery_ids)
    fused = sim_rgb[qa][:, ga] + sim_flow[qb][:, gb]
    return fused, np.asarray(query_ids[0])[qa], np.asarray(gallery_ids[0])[ga]
