"""Prototype (SwAV-style) pieces of ViCC as pure tensor functions.

- `sinkhorn`: soft Sinkhorn-Knopp codes of prototype scores, the old SwAV
  ``distributed_sinkhorn`` that ViCC ships (reference §1.6): ``Q = exp(scores/ε)ᵀ`` (``K×N``),
  infinities replaced by the largest finite entry (``shoot_infs``), ``Q /= ΣQ``, then
  ``iterations`` × (rows scaled to ``1/K``, columns scaled to ``1/(world·N)``), and finally every
  column divided by its sum, so each sample's code sums to 1. The total and the row sums are
  all-reduced over the default process group when one is initialised (column sums are local),
  so two processes give the codes of one process on the concatenated batch.
- `swapped_prediction_loss`: ``(1/|A|) Σ_a (1/(N−1)) Σ_{v≠a} H(q_a, softmax(s_v/τ))``.
- `code_agreement`: the share of a batch whose argmax code equals that of a same-class (and,
  for comparison, of a different-class) batch neighbour.

All arithmetic runs in float32 with autocast disabled (scores up to ``1/ε = 20`` give
``exp(20) ≈ 4.9e8``, out of fp16's range), whatever the input dtype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = ["code_agreement", "shoot_infs", "sinkhorn", "swapped_prediction_loss"]


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _all_reduce(tensor: torch.Tensor, op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM) -> None:
    if _world() > 1:
        dist.all_reduce(tensor, op=op)


def shoot_infs(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` with every ±inf replaced by the largest finite entry (0 if there is none).

    SwAV's ``shoot_infs``: the infinities are first set to 0, then to the tensor's maximum.
    """
    infinite = torch.isinf(tensor)
    largest = torch.where(infinite, torch.zeros_like(tensor), tensor).max()
    return torch.where(infinite, largest, tensor)


@torch.no_grad()
def sinkhorn(
    scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3, *, stabilize: bool = False
) -> torch.Tensor:
    """Soft Sinkhorn-Knopp codes of prototype scores (ViCC / old SwAV ``distributed_sinkhorn``).

    Args:
        scores: ``[N, K]`` scores of N samples against K prototypes (cosine similarities in
            ViCC), any float dtype; this process's rows when a process group is running.
        epsilon: Entropy regularisation ``ε``: ``Q = exp(scores/ε)``.
        iterations: Sinkhorn iterations (row then column scaling each).
        stabilize: Subtract the (all-reduced) maximum score before the exponential
            (``--improve_numerical_stability``; the result is mathematically the same).

    Returns:
        ``[N, K]`` float32 codes, each row summing to 1 (no rounding, no argmax).

    Raises:
        ValueError: ``scores`` is not 2-D or empty, or ``epsilon``/``iterations`` is out of range.
    """
    if scores.ndim != 2 or scores.numel() == 0:
        raise ValueError(f"scores must be a non-empty [N, K] tensor, got {tuple(scores.shape)}")
    if not epsilon > 0 or iterations < 0:
        raise ValueError(f"need epsilon > 0 and iterations ≥ 0, got {epsilon}, {iterations}")
    with torch.autocast(device_type=scores.device.type, enabled=False):
        logits = scores.float() / epsilon
        if stabilize:
            top = logits.max().reshape(1)
            _all_reduce(top, dist.ReduceOp.MAX)
            logits = logits - top
        q = shoot_infs(torch.exp(logits).t())  # [K, N]
        total = q.sum().reshape(1)
        _all_reduce(total)
        q = q / total
        prototypes, samples = q.shape
        row_target = 1.0 / prototypes
        column_target = 1.0 / (_world() * samples)
        for _ in range(iterations):
            rows = q.sum(dim=1)
            _all_reduce(rows)
            q = q * shoot_infs(row_target / rows).unsqueeze(1)
            q = q * (column_target / q.sum(dim=0)).unsqueeze(0)
        return (q / q.sum(dim=0, keepdim=True)).t().contiguous()


def swapped_prediction_loss(
    scores: Sequence[torch.Tensor], codes: Mapping[int, torch.Tensor], temperature: float
) -> torch.Tensor:
    """SwAV's swapped prediction: every assigned view's code predicted by all other views.

    ``L = (1/|A|) Σ_{a∈A} (1/(N−1)) Σ_{v≠a} −mean_b Σ_k q_a[b,k] · log softmax(s_v[b]/τ)_k``

    Args:
        scores: N tensors ``[B, K]``: prototype scores of each view (view order matters only
            through the keys of ``codes``).
        codes: ``{a: q_a}`` for the assigned views ``A``: ``[B, K]`` codes (rows sum to 1).
        temperature: Softmax temperature ``τ``.

    Returns:
        The scalar loss (float32; gradients flow into ``scores`` only).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if len(scores) < 2 or not codes:
        raise ValueError("need at least two views and one assigned view")
    device = scores[0].device
    with torch.autocast(device_type=device.type, enabled=False):
        log_probs = [F.log_softmax(s.float() / temperature, dim=1) for s in scores]
        total = torch.zeros((), device=device)
        for a, q in codes.items():
            if not 0 <= a < len(scores) or q.shape != scores[a].shape:
                raise ValueError(f"code of view {a} does not fit the {len(scores)} score tensors")
            q = q.detach().float()
            cross = sum(-(q * log_probs[v]).sum(dim=1).mean() for v in range(len(scores)) if v != a)
            total = total + cross / (len(scores) - 1)
        return total / len(codes)


@torch.no_grad()
def code_agreement(codes: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """How often a sample's argmax code equals a same-class batch neighbour's, and its baseline.

    Args:
        codes: ``[B, K]`` codes (or scores) of one view.
        labels: ``[B]`` int class labels.

    Returns:
        ``(same, other)`` over the samples with at least one same-class neighbour: ``same`` is the
        share whose argmax prototype equals that of one of their ``s`` same-class neighbours;
        ``other`` is what that share would be if the ``s`` neighbours were drawn from the other
        classes instead: the mean of ``1 − (1 − p)^s``, with ``p`` the fraction of the sample's
        different-class neighbours that share its argmax (a count-matched baseline: "any of 7
        other-class neighbours" would otherwise beat "any of 1 same-class neighbour" by count
        alone). NaN where no sample qualifies. ``same`` well above ``other`` means the codes carry
        class information.
    """
    top = codes.argmax(dim=1)
    labels = labels.to(top.device).long()
    not_self = ~torch.eye(top.shape[0], dtype=torch.bool, device=top.device)
    same_class = (labels[:, None] == labels[None, :]) & not_self
    other_class = labels[:, None] != labels[None, :]
    same_code = top[:, None] == top[None, :]
    n_same = same_class.sum(dim=1)
    eligible = n_same > 0
    if not bool(eligible.any()):
        return float("nan"), float("nan")
    same = (same_class & same_code).any(dim=1)[eligible].float().mean()
    n_other = other_class.sum(dim=1).clamp(min=1)
    p_other = (other_class & same_code).sum(dim=1).double() / n_other
    baseline = 1.0 - (1.0 - p_other) ** n_same.double()
    return float(same), float(baseline[eligible].mean())
