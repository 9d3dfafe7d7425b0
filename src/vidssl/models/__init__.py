"""Models: video backbones (and, from other modules, heads and checkpoint I/O).

Public entry points:

* `build_backbone` (``vidssl.models.backbones``): build a backbone by name.
* ``load_encoder(path)``: rebuild an exported encoder from ``encoder.safetensors`` +
  ``encoder.json``. It belongs to the checkpoint module (``vidssl.models.checkpoints``) and is
  re-exported here once that module exists; the JSON holds ``VideoBackbone.config()``, whose
  keys are exactly `build_backbone`'s arguments (plus ``feature_dim``).
"""

from vidssl.models.backbones import BACKBONE_NAMES, VideoBackbone, build_backbone

__all__ = ["BACKBONE_NAMES", "VideoBackbone", "build_backbone"]
