"""Checkpoints.

Checkpoints: foreign-checkpoint loading (`foreign`), per-method key adapters (`adapters`),
architecture guessing (`arch`), safe reading (`io`), export (`export`) and projection-encoder
loading for co-training (`projection`).
"""

from vidssl.models.checkpoints.arch import build_encoder_backbone
from vidssl.models.checkpoints.export import (
    export_encoder,
    export_torchvision,
    load_encoder,
    read_encoder_info,
)
from vidssl.models.checkpoints.foreign import (
    LoadReport,
    file_sha256,
    find_state_dict,
    load_foreign,
    load_foreign_with_report,
    read_checkpoint,
)

__all__ = [
    "LoadReport",
    "build_encoder_backbone",
    "export_encoder",
    "export_torchvision",
    "file_sha256",
    "find_state_dict",
    "load_encoder",
    "load_foreign",
    "load_foreign_with_report",
    "read_checkpoint",
    "read_encoder_info",
]
