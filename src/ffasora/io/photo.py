"""Colour fundus photographs given to an image-conditioned model: PNG or JPEG bytes -> (H, W, 3) uint8 RGB.

``generate --image`` and the demo's upload both read photographs here, so a file and an upload are accepted
and refused alike. Grey and RGBA images are converted to RGB; anything PIL cannot decode as PNG or JPEG, and
images of more than ``max_pixels`` pixels (a decompression bomb, or a photograph far larger than any model
needs), are refused with a ``ValueError`` naming ``source``.
"""

from __future__ import annotations

import io

import numpy as np

PHOTO_FORMATS = ("PNG", "JPEG")
MAX_PHOTO_PIXELS = 8192 * 8192


def decode_photo(data: bytes, source: str, max_pixels: int = MAX_PHOTO_PIXELS) -> np.ndarray:
    """The photograph in ``data`` (PNG or JPEG bytes) as a contiguous (H, W, 3) uint8 RGB array."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=PHOTO_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ValueError(
                    f"{source}: a {width}x{height} image has more than {max_pixels} pixels; scale it down"
                )
            return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ValueError(
            f"{source}: not a readable PNG or JPEG image ({type(err).__name__}); expected a colour photograph"
        ) from None
