"""Memory banks of per-video embeddings (PCL / IIC / CMC ``NCEAverage``), as pure functions.

A bank is an ``[N, D]`` tensor, one row per training video (its dataset index). The owner keeps
it as a buffer (so it is in the checkpoint) and calls:

- `init_bank`: uniform in ``±1/√(D/3)`` (the reference's ``stdv``), from a seeded generator so
  every DDP rank starts from the same bank;
- `draw_bank_indices`: ``K+1`` rows per sample drawn uniformly, column 0 overwritten with the
  sample's own index (the positive);
- `updated_rows` / `update_bank`: ``bank[i] ← normalise(m·bank[i] + (1−m)·f)``; under DDP
  `update_bank_gathered` gathers every rank's embeddings and indices first, so each rank applies
  the same update and the banks stay identical. A repeated index takes its last occurrence (in
  rank order), deterministically.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vidssl.methods.moco import concat_all_gather

__all__ = [
    "draw_bank_indices",
    "init_bank",
    "update_bank",
    "update_bank_gathered",
    "updated_rows",
]


def init_bank(size: int, dim: int, seed: int) -> torch.Tensor:
    """An ``[size, dim]`` bank uniform in ``±1/√(dim/3)`` from a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(int(seed))
    stdv = 1.0 / math.sqrt(dim / 3)
    return torch.rand(size, dim, generator=generator) * (2 * stdv) - stdv


def draw_bank_indices(
    own: torch.Tensor, bank_size: int, negatives: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[B, negatives+1]`` uniform bank rows; column 0 is each sample's own index ``own[b]``."""
    drawn = torch.randint(bank_size, (len(own), negatives + 1), generator=generator)
    drawn = drawn.to(own.device)
    drawn[:, 0] = own
    return drawn


def updated_rows(rows: torch.Tensor, features: torch.Tensor, momentum: float) -> torch.Tensor:
    """``normalise(momentum·rows + (1 − momentum)·features)`` row by row (L2)."""
    return F.normalize(rows * momentum + features * (1.0 - momentum), dim=1)


@torch.no_grad()
def update_bank(
    bank: torch.Tensor, indices: torch.Tensor, features: torch.Tensor, momentum: float
) -> None:
    """Applies `updated_rows` to ``bank`` in place at ``indices`` (last occurrence wins)."""
    indices = indices.to(bank.device).long()
    last = {int(i): position for position, i in enumerate(indices.tolist())}
    keep = torch.tensor(sorted(last.values()), dtype=torch.long, device=bank.device)
    rows = indices[keep]
    bank[rows] = updated_rows(bank[rows], features.detach()[keep].to(bank.dtype), momentum)


@torch.no_grad()
def update_bank_gathered(
    bank: torch.Tensor, indices: torch.Tensor, features: torch.Tensor, momentum: float
) -> None:
    """`update_bank` with every rank's ``indices`` and ``features``, gathered in rank order.

    Without a process group nothing is gathered (one process: `update_bank` itself).
    """
    update_bank(
        bank,
        concat_all_gather(indices.to(features.device).long()),
        concat_all_gather(features.detach().contiguous()),
        momentum,
    )
