"""Pure contrastive loss functions: tensors in, a scalar (the batch mean) out.

Nothing here holds state, owns a queue or calls a model; the method classes do that and pass the
tensors in. Conventions shared by every function:

- Embeddings (``q``, ``k``, sub-clip keys, queue rows) are expected to be L2-normalised already;
  the functions do not normalise, so the logits are cosine similarities divided by ``τ``.
- A queue (memory of negatives) is laid out ``[K, D]``: one key per row. The reference code bases
  (CoCLR/CPR/CVTCL) store it as a ``[D, K]`` buffer; pass ``buffer.T`` (a free view) or keep the
  buffer in ``[K, D]`` layout.
- All arithmetic runs in float32 with autocast disabled, so fp16/bf16 inputs or an enclosing
  ``torch.autocast`` region give the float32 value (up to the rounding of the inputs themselves).
- Masked logits are set to ``-inf``, so they leave the softmax exactly; every row keeps at least
  its positive, so the loss and its gradient stay finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "contrastive_logits",
    "infonce",
    "local_inter_nce",
    "local_intra_nce",
    "memory_bank_nce",
    "multi_positive_nce",
    "topk_hit_rate",
    "ubernce",
]


def _autocast_off(tensor: torch.Tensor) -> torch.autocast:
    """A context that disables autocast on ``tensor``'s device type."""
    return torch.autocast(device_type=tensor.device.type, enabled=False)


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _check_embeddings(q: torch.Tensor, *others: tuple[str, torch.Tensor, int]) -> None:
    """Checks that ``q`` is ``[B, D]`` and each ``(name, tensor, ndim)`` ends in ``D``."""
    if q.ndim != 2:
        raise ValueError(f"q must be [B, D], got shape {tuple(q.shape)}")
    for name, tensor, ndim in others:
        if tensor.ndim != ndim or tensor.shape[-1] != q.shape[1]:
            raise ValueError(
                f"{name} must be {ndim}-D with last dim {q.shape[1]} (like q), "
                f"got shape {tuple(tensor.shape)}"
            )


def contrastive_logits(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
) -> torch.Tensor:
    """MoCo logits ``[q·k | q·queue] / τ``: column 0 is the positive, columns 1.. the queue.

    Args:
        q: Queries ``[B, D]`` (L2-normalised).
        k: Positive keys ``[B, D]`` (L2-normalised), row ``i`` pairs with ``q[i]``.
        queue: Negative keys ``[K, D]`` (L2-normalised; references keep ``[D, K]``: pass ``.T``).
            ``K`` may be 0.
        temperature: Softmax temperature ``τ > 0``.

    Returns:
        float32 logits ``[B, 1 + K]``.
    """
    _check_temperature(temperature)
    _check_embeddings(q, ("k", k, 2), ("queue", queue, 2))
    if k.shape[0] != q.shape[0]:
        raise ValueError(f"k must have {q.shape[0]} rows like q, got {k.shape[0]}")
    with _autocast_off(q):
        q32 = q.float()
        positive = (q32 * k.float()).sum(dim=1, keepdim=True)
        negatives = q32 @ queue.float().T
        return torch.cat([positive, negatives], dim=1) / temperature


def infonce(
    q: torch.Tensor,
    k: torch.Tensor,
    queue: torch.Tensor,
    temperature: float,
    negative_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE (MoCo v2): cross-entropy of ``[q·k | q·queue] / τ`` with target 0, batch mean.

    Args:
        q: Queries ``[B, D]`` (L2-normalised).
        k: Positive keys ``[B, D]`` (L2-normalised).
        queue: Negative keys ``[K, D]`` (L2-normalised).
        temperature: Softmax temperature ``τ > 0``.
        negative_mask: Optional bool ``[B, K]``; ``True`` removes that queue entry from row
            ``i``'s softmax (e.g. clips of the same video, "sibling masking"). The positive is
            never masked, so every row stays finite even when all negatives are masked.

    Returns:
        Scalar float32 loss.
    """
    logits = contrastive_logits(q, k, queue, temperature)
    with _autocast_off(logits):
        if negative_mask is not None:
            if negative_mask.shape != (logits.shape[0], logits.shape[1] - 1):
                raise ValueError(
                    f"negative_mask must be [B, K] = {[logits.shape[0], logits.shape[1] - 1]}, "
                    f"got {list(negative_mask.shape)}"
                )
            keep_positive = torch.zeros(
                logits.shape[0], 1, dtype=torch.bool, device=negative_mask.device
            )
            full_mask = torch.cat([keep_positive, negative_mask.bool()], dim=1)
            logits = logits.masked_fill(full_mask, float("-inf"))
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target)


def multi_positive_nce(
    logits: torch.Tensor, pos_mask: torch.Tensor, mode: Literal["sum", "mean"] = "sum"
) -> torch.Tensor:
    """NCE with several positives per row, batch mean.

    With ``log p = log_softmax(logits)`` over each row and ``P`` the row's positives:

    - ``mode="sum"`` (CoCLR / CPR MIL-NCE): ``-log Σ_{p∈P} exp(log p_p)``, the log of the summed
      positive probability;
    - ``mode="mean"`` (UberNCE): ``-(1/|P|) Σ_{p∈P} log p_p``, the mean log-likelihood.

    Both equal InfoNCE on rows with a single positive. Logits already set to ``-inf`` drop out of
    the softmax (use this to exclude entries instead of making them negatives).

    Args:
        logits: ``[B, N]`` logits (any float dtype; computed in float32).
        pos_mask: Bool ``[B, N]``; every row needs at least one positive. Positive logits must
            be finite in ``"mean"`` mode; ``"sum"`` needs one finite positive per row.
        mode: ``"sum"`` or ``"mean"``.

    Returns:
        Scalar float32 loss.
    """
    if logits.ndim != 2 or pos_mask.shape != logits.shape:
        raise ValueError(
            f"logits and pos_mask must both be [B, N], got {list(logits.shape)} and "
            f"{list(pos_mask.shape)}"
        )
    if mode not in ("sum", "mean"):
        raise ValueError(f"mode must be 'sum' or 'mean', got {mode!r}")
    positives = pos_mask.bool()
    if not bool(positives.any(dim=1).all()):
        raise ValueError("every row of pos_mask needs at least one positive")
    with _autocast_off(logits):
        log_prob = torch.log_softmax(logits.float(), dim=1)
        if mode == "sum":
            positive_log_prob = log_prob.masked_fill(~positives, float("-inf"))
            per_row = -torch.logsumexp(positive_log_prob, dim=1)
        else:
            summed = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
            per_row = -summed / positives.sum(dim=1)
        return per_row.mean()


def ubernce(
    q: torch.Tensor,
    k: torch.Tensor,
    queue: torch.Tensor,
    labels: torch.Tensor,
    queue_labels: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """UberNCE (supervised upper bound): every queue entry of the query's class is a positive.

    Logits are :func:`contrastive_logits`; the positive mask is ``[1 | labels == queue_labels]``
    and the loss is :func:`multi_positive_nce` in ``"mean"`` mode. Queue slots labelled ``-1``
    (not yet filled) are never positives.

    Args:
        q: Queries ``[B, D]`` (L2-normalised).
        k: Positive keys ``[B, D]`` (L2-normalised).
        queue: Keys ``[K, D]`` (L2-normalised).
        labels: Class ids ``[B]`` of the queries.
        queue_labels: Class ids ``[K]`` of the queue entries (``-1`` = empty slot).
        temperature: Softmax temperature ``τ > 0``.

    Returns:
        Scalar float32 loss.
    """
    if labels.shape != (q.shape[0],) or queue_labels.shape != (queue.shape[0],):
        raise ValueError(
            f"labels must be [B]={q.shape[0]} and queue_labels [K]={queue.shape[0]}, got "
            f"{list(labels.shape)} and {list(queue_labels.shape)}"
        )
    logits = contrastive_logits(q, k, queue, temperature)
    same_class = (labels[:, None] == queue_labels[None, :]) & (queue_labels[None, :] >= 0)
    instance = torch.ones_like(same_class[:, :1])
    return multi_positive_nce(logits, torch.cat([instance, same_class], dim=1), mode="mean")


def _check_sub_keys(q: torch.Tensor, sub_keys: torch.Tensor) -> None:
    _check_embeddings(q, ("sub_keys", sub_keys, 3))
    if sub_keys.shape[0] != q.shape[0]:
        raise ValueError(f"sub_keys must be [B, S, D] with B={q.shape[0]}, got {sub_keys.shape}")


def local_inter_nce(
    q: torch.Tensor, sub_keys: torch.Tensor, queue: torch.Tensor, temperature: float
) -> torch.Tensor:
    """CVTCL "local" (inter) loss: each sub-clip key of the other view is a positive.

    For every sample and every sub-clip ``j`` there is one cross-entropy row
    ``[q·k_j | q·queue] / τ`` with target 0; the loss is the mean over the ``B·S`` rows. The
    negatives are the *global* queue (CVTCL only enqueues whole-clip keys). Computed without
    materialising the ``[B, S, 1+K]`` logits: the row loss is
    ``logaddexp(s_j, logsumexp_n(q·queue_n/τ)) − s_j`` with ``s_j = q·k_j/τ``.

    Args:
        q: Query ``[B, D]``: view 1, sub-clip 1 (L2-normalised).
        sub_keys: Keys ``[B, S, D]``: the S consecutive sub-clips of view 2, momentum encoder
            (L2-normalised).
        queue: Negative keys ``[K, D]`` (L2-normalised).
        temperature: Softmax temperature ``τ > 0``.

    Returns:
        Scalar float32 loss.
    """
    _check_temperature(temperature)
    _check_sub_keys(q, sub_keys)
    _check_embeddings(q, ("queue", queue, 2))
    with _autocast_off(q):
        q32 = q.float()
        positive = torch.einsum("bd,bsd->bs", q32, sub_keys.float()) / temperature
        negative_lse = torch.logsumexp(q32 @ queue.float().T / temperature, dim=1)
        per_row = torch.logaddexp(positive, negative_lse[:, None]) - positive
        return per_row.mean()


def local_intra_nce(
    q: torch.Tensor, sub_keys: torch.Tensor, temperature: float, aligned_index: int = 0
) -> torch.Tensor:
    """CVTCL intra loss: the temporally aligned sub-clip against the video's other sub-clips.

    One two-way cross-entropy row ``[q·k_a, q·k_j] / τ`` (target 0) per other sub-clip
    ``j ≠ a``, i.e. ``softplus((q·k_j − q·k_a) / τ)``; the loss is the mean over ``B·(S−1)``
    rows. In CVTCL the query is sub-clip 1 of view 1 and the aligned key is sub-clip 1 of view 2
    (``aligned_index=0``); the pairing by sub-clip position is inferred from tensor shapes, since
    the CVTCL data loader is not published. Note that :func:`local_inter_nce` treats the same
    non-aligned sub-clips as positives; CVTCL adds both terms as published.

    Args:
        q: Query ``[B, D]`` (L2-normalised).
        sub_keys: Keys ``[B, S, D]`` of the other view's sub-clips, ``S ≥ 2`` (L2-normalised).
        temperature: Softmax temperature ``τ > 0``.
        aligned_index: Which sub-clip is the positive (the one at the query's position).

    Returns:
        Scalar float32 loss.
    """
    _check_temperature(temperature)
    _check_sub_keys(q, sub_keys)
    n_sub = sub_keys.shape[1]
    if n_sub < 2 or not 0 <= aligned_index < n_sub:
        raise ValueError(
            f"need S >= 2 sub-clips and 0 <= aligned_index < S, got S={n_sub}, "
            f"aligned_index={aligned_index}"
        )
    with _autocast_off(q):
        similarity = torch.einsum("bd,bsd->bs", q.float(), sub_keys.float()) / temperature
        others = [j for j in range(n_sub) if j != aligned_index]
        margin = similarity[:, others] - similarity[:, aligned_index : aligned_index + 1]
        return F.softplus(margin).mean()


def topk_hit_rate(
    logits: torch.Tensor, pos_mask: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> dict[int, torch.Tensor]:
    """Fraction of rows whose top-k logits contain at least one positive (for logging).

    A ``k`` larger than the number of columns uses every column. Ties at the k-th logit are
    broken by ``torch.topk`` (unspecified); this is a training monitor, not an evaluation metric.

    Args:
        logits: ``[B, N]`` logits.
        pos_mask: Bool ``[B, N]`` positives (e.g. column 0 for InfoNCE).
        ks: The ``k`` values, each ≥ 1.

    Returns:
        ``{k: 0-dim float32 tensor in [0, 1]}`` (tensors, so logging does not force a sync).
    """
    if logits.ndim != 2 or pos_mask.shape != logits.shape:
        raise ValueError(
            f"logits and pos_mask must both be [B, N], got {list(logits.shape)} and "
            f"{list(pos_mask.shape)}"
        )
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {tuple(ks)}")
    k_max = min(max(ks), logits.shape[1])
    top = logits.detach().float().topk(k_max, dim=1).indices
    hit_at = pos_mask.bool().gather(1, top).int().cummax(dim=1).values  # [B, k]: hit within k
    return {k: hit_at[:, min(k, k_max) - 1].float().mean() for k in ks}


def memory_bank_nce(
    q: torch.Tensor, bank: torch.Tensor, indices: torch.Tensor, temperature: float
) -> torch.Tensor:
    """InfoNCE of each query against ``K+1`` memory-bank rows, row ``indices[:, 0]`` positive.

    PCL's ``NCEAverage`` + ``NCESoftmaxLoss`` (from IIC / CMC): logits
    ``bank[indices[b, j]] · q_b / τ`` and cross-entropy with target 0. The bank rows are
    constants (no gradient reaches the bank); negatives equal to the positive stay in (the
    reference draws them uniformly, so the sample itself may appear again).

    Args:
        q: ``[B, D]`` L2-normalised queries.
        bank: ``[N, D]`` memory bank (rows L2-normalised after their first update).
        indices: int64 ``[B, K+1]`` bank rows, column 0 the positive.
        temperature: ``τ``.

    Returns:
        The batch-mean loss.
    """
    _check_temperature(temperature)
    _check_embeddings(q, ("bank", bank, 2))
    if indices.ndim != 2 or indices.shape[0] != q.shape[0]:
        shape = tuple(indices.shape)
        raise ValueError(f"indices must be [B, K+1] with B={q.shape[0]}, got {shape}")
    with _autocast_off(q):
        rows = bank.detach().float()[indices.to(bank.device)]  # [B, K+1, D]
        logits = torch.einsum("bkd,bd->bk", rows, q.float()) / temperature
        target = torch.zeros(len(q), dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, target)
