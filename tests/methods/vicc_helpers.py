"""Independent float64 re-computations of ViCC's Sinkhorn codes and swapped-prediction loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tests.methods.moco_helpers import moco_config

from vidssl.config.schema import Config
from vidssl.methods.registry import build_method
from vidssl.methods.vicc import ViCC

P = 10  # prototypes in the tiny configs


def vicc_config(*overrides: str, run_dir: Path | None = None) -> Config:
    """Tiny ViCC (R3D-10 width 1/16, 16-d embeddings, 10 prototypes), queue off by default."""
    return moco_config(
        "vicc", f"method.num_prototypes={P}", "method.queue_size=0", *overrides, run_dir=run_dir
    )


def vicc_checkpoint(path: Path, seed: int, *overrides: str) -> Path:
    """A tiny single-stream ViCC state dict saved like a Lightning checkpoint."""
    method = build_method(vicc_config(f"trainer.seed={seed}", *overrides))
    torch.save({"state_dict": method.state_dict(), "epoch": 3}, path)
    return path


def sinkhorn_float64(
    scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3
) -> torch.Tensor:
    """ViCC §1.6 written out in float64 (one process): exp, total, then rows 1/K and columns 1/N."""
    q = torch.exp(scores.double() / epsilon).t()  # [K, N]
    q = q / q.sum()
    prototypes, samples = q.shape
    for _ in range(iterations):
        q = q * ((1.0 / prototypes) / q.sum(dim=1, keepdim=True))
        q = q * ((1.0 / samples) / q.sum(dim=0, keepdim=True))
    return (q / q.sum(dim=0, keepdim=True)).t()


def swav_loss_float64(
    embeddings: list[torch.Tensor],
    weight: torch.Tensor,
    assign: list[int],
    temperature: float = 0.1,
    queues: dict[int, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The ViCC loss from view embeddings and the prototype weights from before the step.

    The prototypes are renormalised here (float64); ``queues[a]`` (rows newest first) is scored
    with them and put in front of view ``a``'s scores before Sinkhorn.
    """
    w = weight.double()
    w = w / w.norm(dim=1, keepdim=True)
    scores = [e.double() @ w.t() for e in embeddings]
    batch = scores[0].shape[0]
    total = torch.zeros((), dtype=torch.float64)
    for a in assign:
        out = scores[a]
        if queues and a in queues:
            out = torch.cat([queues[a].double() @ w.t(), out])
        q = sinkhorn_float64(out)[-batch:]
        terms = []
        for v, s in enumerate(scores):
            if v != a:
                log_p = torch.log_softmax(s / temperature, dim=1)
                terms.append(-(q * log_p).sum(dim=1).mean())
        total = total + sum(terms) / len(terms)
    return total / len(assign)


class EmbeddingSpy:
    """Records the view embeddings of every step (detached copies)."""

    def __init__(self, method: ViCC) -> None:
        self.steps: list[list[torch.Tensor]] = []
        original = method.embed_views

        def spy(batch: dict[str, Any]) -> list[torch.Tensor]:
            out = original(batch)
            self.steps.append([e.detach().clone() for e in out])
            return out

        method.embed_views = spy  # type: ignore[method-assign]
