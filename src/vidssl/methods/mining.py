"""Positive mining for CoCLR and CPR as pure, vectorised tensor functions.

CoCLR (co-training) builds each query's positive set from the *other* view: besides the instance
positive ``k`` (logit column 0) it takes the clips of the same source video in the queue
("siblings") and the ``topk`` queue entries whose other-view keys are most similar to the query's
other-view key ``kf``. CPR replaces the single top-k by a cascade that re-ranks a shrinking pool
of queue candidates, alternating between the other view and the query's own view.

Conventions shared by every function here:

- Queues are laid out ``[K, D]`` (one key per row); the reference code bases keep ``[D, K]``
  buffers, pass ``buffer.T``. Masks over the queue are bool ``[B, K]``; positive masks over the
  logits ``[q·k | q·queue]`` are bool ``[B, 1 + K]``.
- Mining happens only inside the queue; other batch items are never positives.
- Similarities are computed in float32 (float64 stays float64) with autocast disabled and without
  gradients; inputs must be finite. Embeddings are L2-normalised in practice, but nothing here
  needs them to be.
- **Tie-breaking.** Among equal similarities the lower queue slot wins, at every stage. This is
  deterministic on every device (``torch.topk`` makes no such promise, the references use it).
- **Excluded slots are never selected.** The references set excluded similarities to ``-inf`` and
  take the top-k anyway, so when fewer than ``topk`` slots are allowed they mark excluded ones as
  positives, and CPR's later stages forget the ``-inf``. Here an excluded slot stays last in every
  stage and is dropped at the end, so fewer than ``topk`` positives are returned instead.

Nothing here loops over samples; the cascade loops over its (few) stages only.
"""

from __future__ import annotations

import math

import torch

from vidssl.errors import ConfigError

__all__ = [
    "cascade_pool_sizes",
    "cascade_positives",
    "coclr_positive_mask",
    "draw_instance_drop",
    "drop_instance_positive",
    "mining_class_recall",
    "sibling_mask",
    "topk_positives",
]


def sibling_mask(batch_groups: torch.Tensor, queue_groups: torch.Tensor) -> torch.Tensor:
    """Marks the queue entries cut from the same source video as each batch item.

    Args:
        batch_groups: Integer ``[B]`` source-group ids of the batch (UCF101 ``gXX`` groups, or the
            video index where a dataset has no groups, so earlier clips of the same video count).
            A negative id (``-1``) means "no group".
        queue_groups: Integer ``[K]`` source-group ids of the queue entries; ``-1`` for empty
            slots or entries without a group.

    Returns:
        Bool ``[B, K]``: ``True`` where both ids are equal and non-negative. Entries with group
        ``-1`` are never siblings, not even of each other.
    """
    if batch_groups.ndim != 1 or queue_groups.ndim != 1:
        raise ValueError(
            f"batch_groups and queue_groups must be 1-D, got shapes {tuple(batch_groups.shape)} "
            f"and {tuple(queue_groups.shape)}"
        )
    same = batch_groups[:, None] == queue_groups[None, :]
    return same & (batch_groups[:, None] >= 0)


def cascade_pool_sizes(queue_size: int, topk: int, ratio: float, stages: int) -> list[int]:
    """The number of queue candidates CPR keeps after each stage of its cascade.

    Stage ``s < stages - 1`` keeps ``int(K · ratio^(s+1))`` candidates (the references' formula,
    float rounding included); the last stage keeps ``topk``. For ``K=2048, stages=7, ratio=0.5,
    topk=5`` this is ``[1024, 512, 256, 128, 64, 32, 5]``; ``stages=1`` is ``[topk]`` (a plain
    top-k).

    Args:
        queue_size: Queue length ``K``.
        topk: Positives mined per query (``>= 0``).
        ratio: Fraction of the pool kept at each stage, in ``(0, 1]``.
        stages: Number of stages ``S >= 1``.

    Returns:
        The ``stages`` pool sizes, non-increasing, each ``>= topk``.

    Raises:
        ConfigError: On a bad ``topk``/``ratio``/``stages``, or when the last pool before the
            final stage, ``int(K · ratio^(stages-1))``, is smaller than ``topk``.
    """
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise ConfigError(f"CPR cascade stages must be an integer >= 1, got {stages!r}")
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 0:
        raise ConfigError(f"mining topk must be an integer >= 0, got {topk!r}")
    if not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
        raise ConfigError(f"CPR cascade ratio must be in (0, 1], got {ratio!r}")
    last_pool = int(queue_size * ratio ** (stages - 1))
    if last_pool < topk:
        if stages == 1:
            raise ConfigError(f"mining topk={topk} is larger than the queue size K={queue_size}")
        raise ConfigError(
            f"CPR cascade keeps int(K*ratio**(stages-1)) = int({queue_size}*{ratio}**{stages - 1})"
            f" = {last_pool} candidates before its last stage, fewer than topk={topk}; use fewer "
            f"stages, a larger ratio or a larger queue"
        )
    return [int(queue_size * ratio ** (stage + 1)) for stage in range(stages - 1)] + [topk]


def _check_mining_inputs(
    anchor: torch.Tensor, bank: torch.Tensor, exclude: torch.Tensor, names: tuple[str, str]
) -> None:
    """Checks ``anchor [B, D]``, ``bank [K, D]`` and ``exclude [B, K]`` (bool)."""
    anchor_name, bank_name = names
    if anchor.ndim != 2 or bank.ndim != 2 or bank.shape[1] != anchor.shape[1]:
        raise ValueError(
            f"{anchor_name} must be [B, D] and {bank_name} [K, D], got shapes "
            f"{tuple(anchor.shape)} and {tuple(bank.shape)}"
        )
    expected = (anchor.shape[0], bank.shape[0])
    if exclude.dtype != torch.bool or tuple(exclude.shape) != expected:
        raise ValueError(
            f"exclude must be a bool [B, K] = {list(expected)} mask, got {exclude.dtype} "
            f"{list(exclude.shape)}"
        )


def _masked_similarity(
    anchor: torch.Tensor, bank: torch.Tensor, exclude: torch.Tensor
) -> torch.Tensor:
    """``anchor @ bank.T`` in float32 (or float64), with excluded entries at ``-inf``."""
    dtype = torch.promote_types(anchor.dtype, torch.float32)
    with torch.autocast(device_type=anchor.device.type, enabled=False):
        similarity = anchor.to(dtype) @ bank.to(dtype).T
    return similarity.masked_fill(exclude, float("-inf"))


def _top_columns(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Columns of the ``count`` largest scores per row, returned in ascending column order.

    Deterministic on every device: the ``count``-th largest value ``v`` of a row (a value, not an
    index, so ``topk``'s unspecified tie order does not matter) selects every column above ``v``
    and then the lowest columns equal to ``v``, so ties go to the lower column. O(N) per row
    besides the ``topk``, and no host synchronisation.
    """
    batch, width = scores.shape
    if count == 0:
        return torch.empty(batch, 0, dtype=torch.long, device=scores.device)
    kth_largest = scores.topk(count, dim=1, sorted=False).values.amin(dim=1, keepdim=True)
    above = scores > kth_largest
    tied = scores == kth_largest
    tied_needed = count - above.sum(dim=1, keepdim=True)
    chosen = above | (tied & (tied.cumsum(dim=1) <= tied_needed))
    # Exactly ``count`` columns per row are chosen: scatter each to its rank among them; the
    # others go to a spare last column that is cut off.
    rank = torch.where(chosen, chosen.cumsum(dim=1) - 1, count)
    columns = torch.zeros(batch, count + 1, dtype=torch.long, device=scores.device)
    columns.scatter_(1, rank, torch.arange(width, device=scores.device).expand(batch, width))
    return columns[:, :count]


@torch.no_grad()
def cascade_positives(
    kf: torch.Tensor,
    q: torch.Tensor,
    queue_second: torch.Tensor,
    queue: torch.Tensor,
    exclude: torch.Tensor,
    topk: int,
    ratio: float,
    stages: int,
) -> torch.Tensor:
    """CPR's cascade positive retrieval: alternate views over a shrinking candidate pool.

    Each row keeps a pool of candidate queue slots (``[B, n]`` index tensor, kept in ascending
    slot order) and re-ranks it at every stage ``s`` by one view's similarity, keeping
    :func:`cascade_pool_sizes` candidates:

    - ``s = 0`` and the last stage ``s = stages-1``: other view, ``kf · queue_second``;
    - ``0 < s < stages-1``: odd ``s`` the own view, the query ``q · queue``; even ``s`` the
      other view again.

    With ``K=2048, stages=7, ratio=0.5, topk=5`` the pools are 1024 (other) → 512 (own) → 256
    (other) → 128 (own) → 64 (other) → 32 (own) → 5 (other). ``stages=1`` (and ``stages=2``,
    whose two stages rank by the same similarity) gives exactly :func:`topk_positives`.

    Ties go to the lower queue slot at every stage; excluded slots rank last at every stage and
    are never returned (a row with fewer than ``topk`` allowed slots gets fewer positives).

    Args:
        kf: Other-view keys of the batch ``[B, D]`` (CoCLR's frozen ``sampler`` output).
        q: Own-view queries ``[B, D]`` (the training modality's ``encoder_q`` output).
        queue_second: Other-view queue ``[K, D]``.
        queue: Own-view queue ``[K, D]``, slot ``j`` the same clip as ``queue_second[j]``.
        exclude: Bool ``[B, K]``; ``True`` slots are never mined (self and siblings).
        topk: Positives per row.
        ratio: Fraction of the pool kept at each stage, in ``(0, 1]``.
        stages: Number of stages ``S >= 1``.

    Returns:
        Bool ``[B, K]``: the mined queue slots, at most ``topk`` per row.

    Raises:
        ConfigError: When ``int(K · ratio^(stages-1)) < topk`` or a setting is out of range.
    """
    _check_mining_inputs(kf, queue_second, exclude, ("kf", "queue_second"))
    _check_mining_inputs(q, queue, exclude, ("q", "queue"))
    batch, queue_size = exclude.shape
    pool_sizes = cascade_pool_sizes(queue_size, topk, ratio, stages)
    other_view = _masked_similarity(kf, queue_second, exclude)
    own_view = _masked_similarity(q, queue, exclude) if stages > 2 else other_view
    pool = torch.arange(queue_size, device=exclude.device).expand(batch, queue_size)
    for stage, pool_size in enumerate(pool_sizes):
        use_own_view = stage % 2 == 1 and stage < stages - 1
        similarity = own_view if use_own_view else other_view
        scores = similarity if stage == 0 else similarity.gather(1, pool)
        pool = pool.gather(1, _top_columns(scores, pool_size))
    allowed = ~exclude.gather(1, pool)
    mined = torch.zeros(batch, queue_size, dtype=torch.bool, device=exclude.device)
    return mined.scatter_(1, pool, allowed)


def topk_positives(
    kf: torch.Tensor, queue_second: torch.Tensor, exclude: torch.Tensor, topk: int
) -> torch.Tensor:
    """CoCLR's mining: the ``topk`` queue slots most similar to ``kf`` in the other view.

    Ranks ``kf @ queue_second.T`` with ``exclude`` slots set to ``-inf``; ties go to the lower
    queue slot, and an excluded slot is never returned, so a row with fewer than ``topk``
    allowed slots gets all of them and no more.

    Args:
        kf: Other-view keys ``[B, D]``.
        queue_second: Other-view queue ``[K, D]``.
        exclude: Bool ``[B, K]``; ``True`` slots are never mined (self and siblings).
        topk: Positives per row, ``0 <= topk <= K``.

    Returns:
        Bool ``[B, K]`` with at most ``topk`` ``True`` per row.

    Raises:
        ConfigError: When ``topk`` is negative or larger than ``K``.
    """
    # One stage of the cascade is the plain top-k; ``q``/``queue`` are then never read.
    return cascade_positives(kf, kf, queue_second, queue_second, exclude, topk, 1.0, 1)


def coclr_positive_mask(
    groups_self: torch.Tensor, queue_groups: torch.Tensor, mined: torch.Tensor
) -> torch.Tensor:
    """CoCLR's positive mask over the logits ``[q·k | q·queue]``.

    Args:
        groups_self: Integer ``[B]`` source-group ids of the batch (``-1`` = none).
        queue_groups: Integer ``[K]`` source-group ids of the queue (``-1`` = none/empty).
        mined: Bool ``[B, K]`` mined slots (:func:`topk_positives` / :func:`cascade_positives`).

    Returns:
        Bool ``[B, 1 + K]``: column 0 (the instance positive ``k``) is always ``True``; column
        ``1 + j`` is ``True`` when queue slot ``j`` is a sibling or was mined.
    """
    siblings = sibling_mask(groups_self, queue_groups)
    if mined.dtype != torch.bool or mined.shape != siblings.shape:
        raise ValueError(
            f"mined must be a bool [B, K] = {list(siblings.shape)} mask, got {mined.dtype} "
            f"{list(mined.shape)}"
        )
    instance = torch.ones(mined.shape[0], 1, dtype=torch.bool, device=mined.device)
    return torch.cat([instance, siblings | mined], dim=1)


def draw_instance_drop(generator: torch.Generator, p: float = 0.9) -> bool:
    """Draws once per training step whether CoCLR drops the instance positive this step.

    The CoCLR reference (``main_coclr.py``, commit 45f200e) draws one number per iteration,
    ``random.random() < 0.9``, and applies the outcome to the whole batch; it is not a
    per-sample draw. Here the draw comes from the caller's ``generator`` so that runs are
    reproducible and resumable (save ``generator.get_state()`` with the checkpoint).

    Deliberate difference: the reference re-seeds Python's ``random`` at every epoch, so its
    sequence of drop decisions repeats each epoch; CoCLR here keeps one generator running over
    the whole run (seeded by ``trainer.seed``), the evident intent of a 0.9 drop probability.

    Args:
        generator: The caller's ``torch.Generator`` (its device is used for the draw).
        p: Probability of dropping, in ``[0, 1]``.

    Returns:
        ``True`` with probability ``p``.
    """
    if not (isinstance(p, (int, float)) and 0 <= p <= 1):
        raise ConfigError(f"instance-positive drop probability must be in [0, 1], got {p!r}")
    draw = torch.rand(1, generator=generator, device=generator.device)
    return bool(draw.item() < p)


def drop_instance_positive(pos_mask: torch.Tensor, drop: bool) -> torch.Tensor:
    """Removes the instance positive (column 0) from rows that have other positives.

    CoCLR's self-positive dropout: after InfoNCE the instance pair is already easy, so in 90% of
    the steps (see :func:`draw_instance_drop`) the loss uses only the siblings and mined
    positives. A row whose only positive is column 0 keeps it. The dropped column stays in the
    logits, i.e. it becomes a negative of that row's softmax, as in the reference.

    Args:
        pos_mask: Bool ``[B, 1 + K]`` from :func:`coclr_positive_mask`.
        drop: This step's draw; ``False`` returns ``pos_mask`` itself, unchanged.

    Returns:
        Bool ``[B, 1 + K]``.
    """
    if pos_mask.dtype != torch.bool or pos_mask.ndim != 2 or pos_mask.shape[1] < 1:
        raise ValueError(
            f"pos_mask must be a bool [B, 1 + K] mask, got {pos_mask.dtype} {list(pos_mask.shape)}"
        )
    if not drop:
        return pos_mask
    has_other_positives = pos_mask.sum(dim=1) > 1
    dropped = pos_mask.clone()
    dropped[:, 0] &= ~has_other_positives
    return dropped


@torch.no_grad()
def mining_class_recall(
    mined: torch.Tensor, batch_labels: torch.Tensor, queue_labels: torch.Tensor
) -> tuple[float, float]:
    """CPR's "class mining recall": how many mined positives share the query's class.

    For each row with at least one mined slot, the fraction of its mined slots whose queue label
    equals the row's label; rows with nothing mined are left out. Labels are used for logging
    only, never for training.

    Args:
        mined: Bool ``[B, K]`` mined slots.
        batch_labels: Integer ``[B]`` class labels of the batch.
        queue_labels: Integer ``[K]`` class labels of the queue entries.

    Returns:
        ``(mean, median)`` of the per-row fractions as Python floats; the median of an even
        number of rows is the mean of the two middle values. Both are ``nan`` when no row has
        a mined slot.
    """
    if mined.dtype != torch.bool or mined.ndim != 2:
        raise ValueError(f"mined must be a bool [B, K] mask, got {mined.dtype} {list(mined.shape)}")
    if batch_labels.shape != (mined.shape[0],) or queue_labels.shape != (mined.shape[1],):
        raise ValueError(
            f"batch_labels must be [{mined.shape[0]}] and queue_labels [{mined.shape[1]}], got "
            f"{list(batch_labels.shape)} and {list(queue_labels.shape)}"
        )
    same_class = mined & (batch_labels[:, None] == queue_labels[None, :])
    mined_count = mined.sum(dim=1)
    rows = mined_count > 0
    if not bool(rows.any()):
        return math.nan, math.nan
    recall = same_class.sum(dim=1)[rows].double() / mined_count[rows].double()
    return float(recall.mean()), float(torch.quantile(recall, 0.5))
