"""Models: video backbones (and, from other modules, heads and checkpoint I/O).

Public entry points:

* `build_backbone` (``vidssl.models.backbones``): build a backbone by name.
* `load_encoder` (``vidssl.models.checkpoints.export``): rebuild an exported encoder from
  ``encoder.safetensors`` + ``encoder.json``; the JSON holds ``VideoBackbone.config()``, whose
  keys are exactly `build_backbone`'s arguments (plus ``feature_dim``).
* ``vidssl.models.checkpoints.load_foreign``: read a reference system's checkpoint.
"""

from vidssl.models.backbones import BACKBONE_NAMES, VideoBackbone, build_backbone
from vidssl.models.checkpoints.export import load_encoder

__all__ = ["BACKBONE_NAMES", "VideoBackbone", "build_backbone", "load_encoder"]
