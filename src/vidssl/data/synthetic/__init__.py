"""Synthetic motion-defined action videos.

Synthetic motion-defined action videos in official dataset layouts: motions (`motion`), per-video
plans (`plan`), rendering (`render`), the dataset writer (`dataset`) and the probe that checks a
class is learnable from motion alone (`probe`).
"""

from vidssl.data.synthetic.dataset import (
    MOTION_CLASSES,
    SynthParams,
    VideoPlan,
    make_synthetic_dataset,
)

__all__ = ["MOTION_CLASSES", "SynthParams", "VideoPlan", "make_synthetic_dataset"]
