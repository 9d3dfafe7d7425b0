"""The encoder under evaluation: our export or a foreign checkpoint, plus how to feed it.

`load_eval_encoder` returns an `EvalEncoder`: the backbone (eval mode), the input contract read
from ``encoder.json`` (normalisation, channel order, input channels, modality, residual) or from the
foreign method's adapter, and a provenance record for result files (path, SHA-256, method, arch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidssl.data.transforms.ops import residual
from vidssl.errors import UserError

__all__ = ["EvalEncoder", "InputSpec", "adapt_input", "load_eval_encoder"]


@dataclass(frozen=True)
class InputSpec:
    """What the encoder expects as input.

    Attributes:
        mean: Per-channel mean on [0, 1] pixels (3 values, applied to the decoded frames).
        std: Per-channel std.
        channel_order: ``rgb`` or ``bgr`` (the clip's channels are reversed for ``bgr``).
        in_channels: 3, or 2 for flow encoders fed the (v, u) channels of a flow JPEG.
        modality: ``rgb`` or ``flow``.
        residual: Residual-clip mode the encoder was trained on (``pcl``, ``vcp``, ``iic``), or
            None for frames; `adapt_input` turns the normalised clip into that residual.
    """

    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    channel_order: str = "rgb"
    in_channels: int = 3
    modality: str = "rgb"
    residual: str | None = None

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` of the three decoded channels, for `transforms.compose.Normalize`."""
        if len(self.mean) == 3:
            return self.mean, self.std
        mean = (0.5, *self.mean[-2:]) if len(self.mean) == 2 else self.mean[:1] * 3
        std = (1.0, *self.std[-2:]) if len(self.std) == 2 else self.std[:1] * 3
        return tuple(mean), tuple(std)


def adapt_input(x: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """Reorders/selects channels of a normalised ``[..., 3, T, H, W]`` batch for the encoder.

    Encoders trained on residual clips (``spec.residual``) get the clip's frame differences.
    """
    if spec.residual is not None:
        x = residual(x, spec.residual)
    if spec.channel_order == "bgr":
        x = x.flip(-4)
    if spec.in_channels == 2:
        return x[..., 1:, :, :, :]  # flow JPEG channels are [128, v, u]
    if spec.in_channels != 3:
        raise UserError(f"encoder takes {spec.in_channels} input channels; expected 2 or 3")
    return x


@dataclass
class EvalEncoder:
    """A loaded encoder with its input contract and provenance."""

    model: nn.Module
    spec: InputSpec
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_dim(self) -> int:
        """Width of the pooled features."""
        return int(self.model.feature_dim)


def _from_export(path: Path) -> EvalEncoder:
    from vidssl.models import load_encoder
    from vidssl.models.checkpoints.export import ENCODER_WEIGHTS, _encoder_paths
    from vidssl.models.checkpoints.io import file_sha256

    model = load_encoder(path)
    info = model.encoder_info
    norm = info.get("normalization") or {}
    spec = InputSpec(
        mean=tuple(norm.get("mean", InputSpec.mean)),
        std=tuple(norm.get("std", InputSpec.std)),
        channel_order=info.get("channel_order", "rgb"),
        in_channels=int(info.get("in_channels", 3)),
        modality=info.get("modality", "rgb"),
        residual=info.get("residual"),
    )
    weights = _encoder_paths(path)[1]
    record = {
        "kind": "export",
        "path": str(path),
        "arch": info.get("arch"),
        "feature_dim": info.get("feature_dim"),
        "sha256": file_sha256(weights) if weights.name == ENCODER_WEIGHTS else None,
        "source": info.get("source"),
        "input_size": info.get("input_size"),
    }
    return EvalEncoder(model, spec, record)


def _from_checkpoint(path: Path, method: str, arch: str | None, trust: bool) -> EvalEncoder:
    from vidssl.models.checkpoints import load_foreign_with_report
    from vidssl.models.checkpoints.adapters import NORMALIZATIONS, adapter_for

    adapter = adapter_for(method)
    model, report = load_foreign_with_report(path, adapter.name, arch, trust=trust)
    mean, std = NORMALIZATIONS[adapter.normalization]
    modality = "flow" if report.in_channels == 2 else "rgb"
    spec = InputSpec(mean, std, adapter.channel_order, report.in_channels, modality)
    record = {
        "kind": "checkpoint",
        "path": str(path),
        "method": report.method,
        "arch": report.arch,
        "feature_dim": int(model.feature_dim),
        "sha256": report.sha256,
    }
    return EvalEncoder(model, spec, record)


def load_eval_encoder(
    encoder: str | Path | None = None,
    *,
    checkpoint: str | Path | None = None,
    method: str | None = None,
    arch: str | None = None,
    trust: bool = False,
    modality: str | None = None,
) -> EvalEncoder:
    """Loads the encoder to evaluate.

    Args:
        encoder: Our export (directory with ``encoder.safetensors`` + ``encoder.json``).
        checkpoint: A foreign checkpoint file (instead of ``encoder``).
        method: The method that wrote ``checkpoint`` (``coclr``, ``vicc``, ``pcl``, ...).
        arch: Architecture of ``checkpoint``; None infers it.
        trust: Allow arbitrary unpickling of ``checkpoint``.
        modality: Force ``rgb`` or ``flow`` (default: from the export, or by input channels).

    Returns:
        The `EvalEncoder` (model in eval mode).

    Raises:
        UserError: Neither or both of ``encoder``/``checkpoint``, no ``method``, bad files.
    """
    if (encoder is None) == (checkpoint is None):
        raise UserError("give exactly one of --encoder DIR (our export) or --checkpoint FILE")
    if checkpoint is not None:
        if not method:
            raise UserError(f"--checkpoint {checkpoint} needs --method (coclr, vicc, pcl, ...)")
        loaded = _from_checkpoint(Path(checkpoint), method, arch, trust)
    else:
        loaded = _from_export(Path(encoder))  # type: ignore[arg-type]
    if modality is not None:
        if modality not in ("rgb", "flow"):
            raise UserError(f"modality {modality!r}: expected rgb or flow")
        loaded.spec = dataclasses.replace(loaded.spec, modality=modality)
    loaded.record["modality"] = loaded.spec.modality
    return loaded
