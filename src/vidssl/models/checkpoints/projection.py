"""Loads a trained query encoder (backbone + projection head) into a `ProjectionEncoder`.

CoCLR-style co-training starts from two earlier runs: the trained stream from run A's query
encoder and the frozen stream from run B's (CoCLR ``main_coclr.py --pretrain A B``). Three kinds
of file are accepted for each:

- **our run checkpoints** (Lightning ``.ckpt`` of any momentum-contrast method, or the run
  directory, which means ``checkpoints/last.ckpt``): ``encoder_q.backbone.*`` and
  ``encoder_q.head.*``, loaded strictly;
- **CoCLR-format files** (CoCLR/CPR/CVTCL ``*.pth.tar``, InfoNCE or CoCLR): the backbone under
  ``encoder_q.0.`` through `vidssl.models.checkpoints.load_foreign` (S3D ``blockN.i`` aliases,
  strict), the head from ``encoder_q.2.*`` / ``encoder_q.4.*`` (same 1×1×1-conv shapes as ours);
- **exported encoders** (``encoder.safetensors`` + ``encoder.json``, `vidssl.models.load_encoder`):
  backbone only, the head keeps its initialisation (logged).

Queues, key encoders and frozen samplers in the files are never read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from vidssl.errors import CheckpointError
from vidssl.models.checkpoints.adapters import strip_data_parallel
from vidssl.models.checkpoints.export import ENCODER_JSON, ENCODER_WEIGHTS, load_encoder
from vidssl.models.checkpoints.foreign import load_foreign
from vidssl.models.checkpoints.io import StateDict, find_state_dict, read_checkpoint
from vidssl.models.heads import ProjectionEncoder

log = logging.getLogger(__name__)

OURS_PREFIX = "encoder_q."
COCLR_PREFIX = "encoder_q.0."
#: CoCLR's head modules ``encoder_q.2`` / ``encoder_q.4`` → our head's ``0`` / ``2``.
COCLR_HEAD = {"encoder_q.2.": "0.", "encoder_q.4.": "2."}


def _load_strict(module: torch.nn.Module, state: StateDict, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).strip().splitlines()[1:3]]
        raise CheckpointError(f"{what} does not fit this model: {' '.join(lines)}") from None


def _is_exported(path: Path) -> bool:
    if path.is_dir():
        return (path / ENCODER_JSON).is_file()
    return path.name in (ENCODER_JSON, ENCODER_WEIGHTS)


def resolve_checkpoint_path(path: str | Path) -> Path:
    """``path`` itself, or ``path/checkpoints/last.ckpt`` for one of our run directories."""
    path = Path(path)
    last = path / "checkpoints" / "last.ckpt"
    if path.is_dir() and not _is_exported(path) and last.is_file():
        return last
    return path


def load_projection_encoder(
    path: str | Path, encoder: ProjectionEncoder, *, trust: bool = False
) -> str:
    """Copies the query encoder stored at ``path`` into ``encoder`` (in place).

    Args:
        path: A run checkpoint or run directory of ours, a CoCLR-format file, or an exported
            encoder (directory, ``encoder.json`` or ``encoder.safetensors``).
        encoder: The target; its backbone's architecture, input channels and width must match.
        trust: Allow arbitrary unpickling of the file (only for trusted sources).

    Returns:
        What was loaded: ``"vidssl"``, ``"coclr"`` or ``"exported"`` (backbone only).

    Raises:
        CheckpointError: Missing or unreadable file, a file without a query encoder, or weights
            that do not fit ``encoder`` (one line naming the problem).
    """
    path = resolve_checkpoint_path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if _is_exported(path):
        backbone = load_encoder(path)
        _load_strict(encoder.backbone, backbone.state_dict(), f"exported encoder {path}")
        log.warning("%s: exported encoder has no projection head; head left at init", path)
        return "exported"
    raw, _ = find_state_dict(read_checkpoint(path, trust=trust), ("state_dict",), path)
    state = {strip_data_parallel(key): value for key, value in raw.items()}
    if any(key.startswith(OURS_PREFIX + "backbone.") for key in state):
        query = {k[len(OURS_PREFIX) :]: v for k, v in state.items() if k.startswith(OURS_PREFIX)}
        _load_strict(encoder, query, f"query encoder of {path}")
        return "vidssl"
    if any(key.startswith(COCLR_PREFIX) for key in state):
        config = encoder.backbone.config()
        backbone = load_foreign(
            path,
            "coclr",
            config["name"],
            trust=trust,
            in_channels=config["in_channels"],
            width_mult=config["width_mult"],
        )
        _load_strict(encoder.backbone, backbone.state_dict(), f"backbone of {path}")
        head = {
            ours + key[len(theirs) :]: value
            for key, value in state.items()
            for theirs, ours in COCLR_HEAD.items()
            if key.startswith(theirs)
        }
        _load_strict(encoder.head, head, f"projection head (encoder_q.2/.4) of {path}")
        return "coclr"
    found = ", ".join(sorted({key.split(".")[0] for key in state})[:6])
    raise CheckpointError(
        f"checkpoint {path} has no query encoder (encoder_q.backbone.* or CoCLR encoder_q.0.*); "
        f"found {found}"
    )
