"""JPEG encode/decode helpers on uint8 numpy arrays (Pillow; no torchvision).

`decode_jpeg` can use libjpeg's DCT-domain downscaling ("draft" mode): when the caller only needs
an image whose short side is at least ``min_short_side``, the decoder scales by 1/2, 1/4 or 1/8
while staying at or above that size, which makes decoding several times cheaper.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    """Encodes an ``H×W×3`` or ``H×W`` uint8 array as JPEG (4:4:4 chroma at quality ≥ 90)."""
    if image.dtype != np.uint8:
        raise TypeError(f"encode_jpeg expects uint8, got {image.dtype}")
    buffer = io.BytesIO()
    subsampling = 0 if quality >= 90 else 2
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    return buffer.getvalue()


def decode_jpeg(data: bytes, min_short_side: int | None = None) -> np.ndarray:
    """Decodes JPEG bytes to an ``H×W×3`` uint8 RGB array.

    Args:
        data: the encoded image.
        min_short_side: if given, allow reduced-size decoding as long as the decoded short side
            stays ``>= min_short_side``.

    Raises:
        OSError: the bytes are not a decodable image.
    """
    with Image.open(io.BytesIO(data)) as image:
        if min_short_side is not None and image.format == "JPEG":
            width, height = image.size
            scale = max(1, min(width, height) // max(1, min_short_side))
            if scale >= 2:
                image.draft("RGB", (max(1, width // scale), max(1, height // scale)))
        return np.asarray(image.convert("RGB"))
