"""Helpers for the checkpoint tests: tiny backbones with random weights, and comparisons.

(No tests here; the file name keeps it inside the checkpoint tests' namespace.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vidssl.models.backbones import S3D_BLOCK_ALIASES, VideoBackbone
from vidssl.models.checkpoints.arch import build_encoder_backbone

TINY = 0.125
StateDict = dict[str, torch.Tensor]


def randomized_backbone(
    arch: str, *, width_mult: float = TINY, in_channels: int = 3, seed: int = 0, **kwargs: Any
) -> VideoBackbone:
    """A backbone whose every tensor (BN statistics and counters included) is random."""
    model = build_encoder_backbone(arch, width_mult=width_mult, in_channels=in_channels, **kwargs)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if not tensor.dtype.is_floating_point:
                tensor.copy_(torch.randint(1, 10_000, tensor.shape, generator=generator))
            elif key.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
    return model.eval()


def trunk_state(model: VideoBackbone) -> StateDict:
    """A detached copy of the model's state dict."""
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def random_tensor(*shape: int, seed: int = 1) -> torch.Tensor:
    """A random float tensor (for heads, queues, prototypes)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def shifted(state: StateDict, offset: float = 3.0) -> StateDict:
    """Copies of the float tensors moved by ``offset`` (a momentum encoder differs from q)."""
    return {
        key: value + offset if value.dtype.is_floating_point else value.clone()
        for key, value in state.items()
    }


def to_coclr_alias(key: str) -> str | None:
    """CoCLR's second name for an S3D key (``Mixed_4f.x`` → ``block4.5.x``), None if it has none."""
    canonical_to_alias = {canonical: alias for alias, canonical in S3D_BLOCK_ALIASES.items()}
    head, _, rest = key.partition(".")
    alias = canonical_to_alias.get(head)
    return None if alias is None else f"{alias}.{rest}"


def assert_state_equal(model: torch.nn.Module, expected: StateDict) -> None:
    """Every tensor of ``model`` equals ``expected``'s (same keys, exact values)."""
    actual = model.state_dict()
    assert list(actual) == list(expected)
    different = [key for key in expected if not torch.equal(actual[key], expected[key])]
    assert different == []


def save(tmp_path: Path, name: str, checkpoint: Any) -> Path:
    """``torch.save`` into ``tmp_path/name``."""
    path = tmp_path / name
    torch.save(checkpoint, path)
    return path
