"""Nearest-neighbour video retrieval: feature protocols, R@k and top-k neighbours.

Protocol (CoCLR/CPR/CVTCL/ViCC §5.1, PCL §3.8): test-split videos are the queries, train-split
videos the gallery; similarity is the cosine; R@k is the fraction of queries for which at least
one of the k most similar gallery videos has the query's label (k ∈ {1, 5, 10, 20, 50}).

How per-window (per-clip) features become one vector per video depends on the protocol, see
:data:`PROTOCOLS` and :func:`video_features`; the clip sampling itself (sliding windows, one
random clip, 10 uniform clips) belongs to the feature extraction code.

Ranking is deterministic: gallery items are ordered by similarity (descending), ties by lower
gallery index. Everything is computed in float32, chunked over queries, so a Kinetics-size
gallery needs only ``chunk_size × n_gallery`` similarities in memory at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vidssl.errors import ConfigError, UserError

__all__ = [
    "DEFAULT_KS",
    "PROTOCOLS",
    "RetrievalProtocol",
    "center_and_normalize",
    "cosine_similarity",
    "get_protocol",
    "mean_over_windows",
    "nearest_neighbours",
    "nearest_neighbours_from_similarity",
    "recall_at_k",
    "recall_at_k_from_similarity",
    "video_features",
]

logger = logging.getLogger(__name__)

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20, 50)
DEFAULT_CHUNK_SIZE = 256
_NO_POSITIVE = torch.iinfo(torch.int64).max  # rank of a query whose class is not in the gallery

ArrayLike = torch.Tensor | np.ndarray | Sequence


@dataclass(frozen=True)
class RetrievalProtocol:
    """How per-window features become the per-video features that are compared.

    Attributes:
        name: Protocol name (``coclr``, ``full``, ``pcl``).
        normalize_windows: L2-normalise each window's feature before the per-video mean.
        center: Subtract each set's own mean (queries and gallery separately), then L2.
        description: What the protocol is and which clips it expects.
    """

    name: str
    normalize_windows: bool
    center: bool
    description: str


_COCLR_DESCRIPTION = (
    "CoCLR/CPR/CVTCL/ViCC: L2 per window, mean per video, per-set centring + L2; queries use "
    "every sliding window (32 frames, stride 15), the gallery one random clip"
)
PROTOCOLS: dict[str, RetrievalProtocol] = {
    "coclr": RetrievalProtocol("coclr", True, True, _COCLR_DESCRIPTION),
    "full": RetrievalProtocol(
        "full", True, True, "CoCLR maths with every sliding window on both sides (no random clip)"
    ),
    "pcl": RetrievalProtocol(
        "pcl", False, False, "PCL/VCP: raw features averaged over 10 uniform clips, no centring"
    ),
}


def get_protocol(name: str) -> RetrievalProtocol:
    """Returns the :class:`RetrievalProtocol` called ``name`` (``ConfigError`` if unknown)."""
    if name not in PROTOCOLS:
        raise ConfigError(
            f"retrieval protocol {name!r} is unknown; expected one of {', '.join(PROTOCOLS)}"
        )
    return PROTOCOLS[name]


def _as_features(values: ArrayLike, name: str) -> torch.Tensor:
    """A non-empty, finite ``[N, D]`` float32 tensor (``UserError`` otherwise)."""
    tensor = torch.as_tensor(values)
    if tensor.ndim != 2 or tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise UserError(
            f"{name} must be a non-empty [N, D] feature matrix, got shape {tuple(tensor.shape)}"
        )
    tensor = tensor.float()
    if not bool(torch.isfinite(tensor).all()):
        raise UserError(f"{name} contains NaN or infinite values")
    return tensor


def _label_array(labels: ArrayLike, name: str, expected: int) -> np.ndarray:
    array = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.ndim != 1 or len(array) != expected:
        raise UserError(f"{name} must hold one label per item ({expected}), got {array.shape}")
    if array.dtype.kind not in "iuUSO":
        raise UserError(f"{name} must be integer class ids or strings, got {array.dtype}")
    if array.dtype.kind in "iu" and (array < 0).any():
        raise UserError(
            f"{name} has negative class ids (-1 = unlabelled); retrieval needs a "
            "label for every video"
        )
    return array


def _encode_labels(
    query_labels: ArrayLike,
    gallery_labels: ArrayLike,
    shape: tuple[int, int],
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer (≥ 0) or string labels → int64 codes on ``device``, equal iff labels are equal."""
    query = _label_array(query_labels, "query_labels", shape[0])
    gallery = _label_array(gallery_labels, "gallery_labels", shape[1])
    if query.dtype.kind not in "iu" or gallery.dtype.kind not in "iu":
        query, gallery = query.astype(str), gallery.astype(str)
    _, codes = np.unique(np.concatenate([query, gallery]), return_inverse=True)
    codes = torch.as_tensor(codes.reshape(-1).astype(np.int64), device=device)
    return codes[: len(query)], codes[len(query) :]


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise UserError(f"retrieval ks must be positive integers, got {ks}")
    return ks


SimilarityBlocks = Iterator[tuple[slice, torch.Tensor]]


def _row_slices(n_rows: int, chunk_size: int, progress: bool) -> Iterator[slice]:
    if chunk_size < 1:
        raise UserError(f"retrieval chunk_size must be >= 1, got {chunk_size}")
    starts = range(0, n_rows, chunk_size)
    for start in tqdm(starts, desc="retrieval", unit="chunk", disable=None if progress else True):
        yield slice(start, min(start + chunk_size, n_rows))


def _feature_blocks(
    query: torch.Tensor, gallery: torch.Tensor, chunk_size: int, progress: bool
) -> SimilarityBlocks:
    """``(rows, cosine block)`` over row blocks of L2-normalised queries against the gallery."""
    for rows in _row_slices(len(query), chunk_size, progress):
        yield rows, query[rows] @ gallery.T


def _as_similarity(similarity: ArrayLike) -> torch.Tensor:
    matrix = torch.as_tensor(similarity)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise UserError(f"similarity must be a non-empty [Q, G] matrix, got {tuple(matrix.shape)}")
    return matrix


def _matrix_blocks(matrix: torch.Tensor, chunk_size: int, progress: bool) -> SimilarityBlocks:
    """``(rows, float32 block)`` over row blocks of a precomputed similarity matrix."""
    for rows in _row_slices(matrix.shape[0], chunk_size, progress):
        block = matrix[rows].float()
        if not bool(torch.isfinite(block).all()):
            raise UserError("similarity contains NaN or infinite values")
        yield rows, block


def center_and_normalize(feats: ArrayLike) -> torch.Tensor:
    """Subtracts the set's own mean feature, then L2-normalises each row (CoCLR/ViCC).

    Apply it to the query set and the gallery set separately. A set of one item becomes a zero
    vector (it equals its own mean), as in the reference code.

    Args:
        feats: ``[N, D]`` features of one set.

    Returns:
        float32 ``[N, D]``.
    """
    tensor = _as_features(feats, "feats")
    return F.normalize(tensor - tensor.mean(dim=0, keepdim=True), dim=1)


def mean_over_windows(
    window_feats: ArrayLike, video_ids: ArrayLike, *, normalize_windows: bool = True
) -> tuple[torch.Tensor, np.ndarray]:
    """Per-video mean of per-window features.

    Args:
        window_feats: ``[W, D]`` one feature per window (clip).
        video_ids: ``W`` video ids (ints or strings), the video each window belongs to; windows
            of one video need not be adjacent.
        normalize_windows: L2-normalise each window first (CoCLR/ViCC: the classifier returns
            L2-normalised features); ``False`` averages raw features (PCL).

    Returns:
        ``(video_feats [V, D] float32, ids [V])`` with videos in order of first appearance.
    """
    feats = _as_features(window_feats, "window_feats")
    ids = video_ids.cpu().numpy() if isinstance(video_ids, torch.Tensor) else np.asarray(video_ids)
    if ids.ndim != 1 or len(ids) != len(feats):
        raise UserError(
            f"video_ids must hold one id per window ({len(feats)}), got shape {ids.shape}"
        )
    if normalize_windows:
        feats = F.normalize(feats, dim=1)
    unique_ids, first_index, inverse = np.unique(ids, return_index=True, return_inverse=True)
    appearance_order = np.argsort(first_index)
    position = np.argsort(appearance_order)  # where each unique id lands in appearance order
    group = torch.as_tensor(position[inverse.reshape(-1)], device=feats.device)
    sums = feats.new_zeros(len(unique_ids), feats.shape[1]).index_add_(0, group, feats)
    counts = torch.bincount(group, minlength=len(unique_ids)).to(feats.dtype)
    return sums / counts[:, None], unique_ids[appearance_order]


def video_features(
    window_feats: ArrayLike, video_ids: ArrayLike, protocol: str | RetrievalProtocol
) -> tuple[torch.Tensor, np.ndarray]:
    """Per-video retrieval features of one set (queries or gallery) under ``protocol``.

    Args:
        window_feats: ``[W, D]`` pooled backbone features, one per window (clip).
        video_ids: ``W`` video ids.
        protocol: A name from :data:`PROTOCOLS` or a :class:`RetrievalProtocol`.

    Returns:
        ``(feats [V, D], ids [V])``, ready for :func:`recall_at_k`.
    """
    if isinstance(protocol, str):
        protocol = get_protocol(protocol)
    feats, ids = mean_over_windows(
        window_feats, video_ids, normalize_windows=protocol.normalize_windows
    )
    return (center_and_normalize(feats) if protocol.center else feats), ids


def cosine_similarity(query_feats: ArrayLike, gallery_feats: ArrayLike) -> torch.Tensor:
    """Full ``[Q, G]`` cosine-similarity matrix (rows L2-normalised here), e.g. for fusion."""
    query, gallery = _normalized_pair(query_feats, gallery_feats)
    return query @ gallery.T


def _normalized_pair(
    query_feats: ArrayLike, gallery_feats: ArrayLike
) -> tuple[torch.Tensor, torch.Tensor]:
    query = _as_features(query_feats, "query_feats")
    gallery = _as_features(gallery_feats, "gallery_feats").to(query.device)
    if query.shape[1] != gallery.shape[1]:
        raise UserError(
            f"query and gallery features differ in width: {query.shape[1]} vs {gallery.shape[1]}"
        )
    return F.normalize(query, dim=1), F.normalize(gallery, dim=1)


def _first_positive_rank(
    similarity: torch.Tensor, query_labels: torch.Tensor, gallery_labels: torch.Tensor
) -> torch.Tensor:
    """0-based rank of each query's best same-class gallery item (``_NO_POSITIVE`` if none).

    Under the order (similarity desc, gallery index asc) every item ranked before the first
    positive is a negative, so its rank is the number of items strictly more similar plus the
    tied ones with a lower index. No sort is needed, and a hit at k is ``rank < k``.
    """
    positive = query_labels[:, None] == gallery_labels[None, :]
    best = similarity.masked_fill(~positive, float("-inf")).amax(dim=1, keepdim=True)
    at_best = similarity == best
    first_best = (positive & at_best).to(torch.uint8).argmax(dim=1, keepdim=True)
    gallery_index = torch.arange(similarity.shape[1], device=similarity.device)
    rank = (similarity > best).sum(dim=1) + (at_best & (gallery_index < first_best)).sum(dim=1)
    return torch.where(positive.any(dim=1), rank, _NO_POSITIVE)


def _recall_from_blocks(
    blocks: SimilarityBlocks,
    query_labels: torch.Tensor,
    gallery_labels: torch.Tensor,
    ks: tuple[int, ...],
) -> dict[int, float]:
    hits = torch.zeros(len(ks), dtype=torch.int64, device=query_labels.device)
    k_values = torch.tensor(ks, device=query_labels.device)
    for rows, similarity in blocks:
        rank = _first_positive_rank(similarity, query_labels[rows], gallery_labels)
        hits += (rank[:, None] < k_values[None, :]).sum(dim=0)
    recall = dict(zip(ks, (hits.double() / len(query_labels)).tolist()))
    logger.debug("R@k of %d queries: %s", len(query_labels), recall)
    return recall


def recall_at_k(
    query_feats: ArrayLike,
    query_labels: ArrayLike,
    gallery_feats: ArrayLike,
    gallery_labels: ArrayLike,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
) -> dict[int, float]:
    """R@k of cosine nearest-neighbour retrieval.

    The features are used as given (prepare them with :func:`video_features`); rows are
    L2-normalised here so the dot product is the cosine. A query scores a hit at k when any of its
    k nearest gallery items (ties: lower gallery index first) has its label. A k larger than the
    gallery uses the whole gallery; a query whose class is absent from the gallery misses at every
    k.

    Args:
        query_feats: ``[Q, D]`` query features (tensor or array).
        query_labels: ``Q`` class ids (ints ≥ 0) or class names.
        gallery_feats: ``[G, D]`` gallery features.
        gallery_labels: ``G`` class ids or names.
        ks: The k values.
        chunk_size: Queries per similarity block (memory ``chunk_size × G`` floats).
        progress: Show a progress bar over the chunks.

    Returns:
        ``{k: recall in [0, 1]}`` in the order of ``ks``.
    """
    ks = _check_ks(ks)
    query, gallery = _normalized_pair(query_feats, gallery_feats)
    shape = (len(query), len(gallery))
    labels = _encode_labels(query_labels, gallery_labels, shape, query.device)
    return _recall_from_blocks(_feature_blocks(query, gallery, chunk_size, progress), *labels, ks)


def recall_at_k_from_similarity(
    similarity: ArrayLike,
    query_labels: ArrayLike,
    gallery_labels: ArrayLike,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
) -> dict[int, float]:
    """R@k from a precomputed ``[Q, G]`` similarity (e.g. RGB + flow matrices summed).

    Same ranking and rules as :func:`recall_at_k`; the matrix is read in float32 row blocks.

    Args:
        similarity: ``[Q, G]`` similarities, larger = more similar.
        query_labels: ``Q`` class ids (ints ≥ 0) or class names.
        gallery_labels: ``G`` class ids or names.
        ks: The k values.
        chunk_size: Query rows processed at a time.
        progress: Show a progress bar over the chunks.

    Returns:
        ``{k: recall in [0, 1]}`` in the order of ``ks``.
    """
    ks = _check_ks(ks)
    matrix = _as_similarity(similarity)
    labels = _encode_labels(query_labels, gallery_labels, tuple(matrix.shape), matrix.device)
    return _recall_from_blocks(_matrix_blocks(matrix, chunk_size, progress), *labels, ks)


def _top_k_indices(similarity: torch.Tensor, k: int) -> torch.Tensor:
    """``[n, k]`` gallery indices by similarity desc, ties by lower index (``k ≤ G``).

    The k-th largest value is the threshold: everything strictly above it is taken, plus the
    lowest-indexed items tied at it; the k chosen items are then stably sorted by similarity.
    """
    kth_value = similarity.topk(k, dim=1).values[:, -1:]
    above = similarity > kth_value
    at = similarity == kth_value
    needed_at = k - above.sum(dim=1, keepdim=True)
    chosen = above | (at & (at.cumsum(dim=1) <= needed_at))
    index = chosen.nonzero()[:, 1].view(-1, k)  # row-major: ascending gallery index per row
    order = similarity.gather(1, index).sort(dim=1, descending=True, stable=True).indices
    return index.gather(1, order)


def _neighbours_from_blocks(blocks: SimilarityBlocks, k: int, n_gallery: int) -> torch.Tensor:
    if k < 1:
        raise UserError(f"nearest_neighbours k must be >= 1, got {k}")
    return torch.cat([_top_k_indices(block, min(k, n_gallery)) for _, block in blocks])


def nearest_neighbours(
    query_feats: ArrayLike,
    gallery_feats: ArrayLike,
    k: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> torch.Tensor:
    """Indices of each query's k most cosine-similar gallery items (for retrieval grids).

    Args:
        query_feats: ``[Q, D]`` query features.
        gallery_feats: ``[G, D]`` gallery features.
        k: Neighbours per query; clipped to ``G``.
        chunk_size: Queries per similarity block.

    Returns:
        int64 ``[Q, min(k, G)]``, most similar first, ties by lower gallery index.
    """
    query, gallery = _normalized_pair(query_feats, gallery_feats)
    return _neighbours_from_blocks(
        _feature_blocks(query, gallery, chunk_size, False), k, len(gallery)
    )


def nearest_neighbours_from_similarity(
    similarity: ArrayLike, k: int, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> torch.Tensor:
    """:func:`nearest_neighbours` for a precomputed ``[Q, G]`` similarity (e.g. fused streams).

    Returns:
        int64 ``[Q, min(k, G)]``, most similar first, ties by lower gallery index.
    """
    matrix = _as_similarity(similarity)
    return _neighbours_from_blocks(_matrix_blocks(matrix, chunk_size, False), k, matrix.shape[1])
