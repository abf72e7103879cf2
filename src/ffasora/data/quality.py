"""Vessel-area ratio: FFA Sora kept only videos whose vessels cover enough of the field (arXiv 2412.17346).

Vessels fill with dye in the arteriovenous phase and then fade, so the ratio is measured on the temporal
maximum of the standardised frames, where every vessel is at its brightest. A Sato tubeness filter for bright
ridges (vessels are bright on FFA) scores each pixel; the ratio is the share of the fundus field scoring above
``threshold``. Because the frames are on a fixed [0, 1] scale the threshold is an absolute ridge contrast, so
a blank, washed-out or noise-only video scores near zero instead of being rescaled into looking vascular.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.filters import sato

from ffasora.data.standardise import disc_mask

ANALYSIS_SIZE = 256
SIGMAS = (1.0, 2.0, 3.0)


def vesselness(image: np.ndarray, sigmas: tuple[float, ...] = SIGMAS) -> np.ndarray:
    """Sato tubeness of bright ridges of a (H, W) image in [0, 1]; same shape, >= 0."""
    return np.asarray(sato(image.astype(np.float64), sigmas=sigmas, black_ridges=False), dtype=np.float32)


def vessel_area_ratio(frames: np.ndarray, threshold: float = 0.015) -> float:
    """Share of the fundus field covered by vessels in (T, S, S) standardised frames in [0, 1].

    The projection is always brought to 256 px first, so that the ratio does not depend on the output size:
    the filter's sigmas are in pixels, and vessels and noise change width with the scale.
    """
    projection = frames.max(axis=0).astype(np.float32)
    size = ANALYSIS_SIZE
    if projection.shape != (size, size):
        image = Image.fromarray(projection, mode="F").resize((size, size), Image.Resampling.BILINEAR)
        projection = np.asarray(image, dtype=np.float32)
    # The field's rim is a strong edge, not a vessel: leave a band inside it out.
    field = disc_mask(size, margin=SIGMAS[-1] + 0.04 * size)
    score = vesselness(projection)
    if not field.any():
        return 0.0
    return float((score[field] > threshold).mean())
