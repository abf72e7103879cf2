"""Standardise a source FFA video: find the circular fundus field, crop to it, resize, resample in time.

FFA Sora brought every video to 21 frames at 512x512 by linear interpolation over frame index (arXiv
2412.17346, Methods). Clinical series are sampled irregularly (dense in the arterial phase, sparse late), so
interpolating over index distorts the dye kinetics; ``interp="time"`` (our default) interpolates over the true
times when they are known and ``interp="index"`` reproduces the paper.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image
from scipy import ndimage

INTERPOLATIONS = ("time", "index")


@dataclasses.dataclass(frozen=True)
class Circle:
    """The fundus field in source pixels: centre (cy, cx) and radius r."""

    cy: float
    cx: float
    r: float


def detect_field(frames: np.ndarray, min_fraction: float = 0.05) -> Circle:
    """The circular fundus field of (T, H, W) frames in [0, 1] (or of a photograph's (3, H, W) channels).

    Early frames are dark (no dye yet), so the field is found on the temporal maximum. Pixels above a fraction
    of its robust peak form the field; burned-in text is bright too but sits apart, so only the largest
    connected region is kept. Its rim is fitted with a least-squares circle (Kasa fit) using only rim points
    away from the image border, which recovers fields that the capture window clips at top and bottom.
    """
    projection = ndimage.median_filter(frames.max(axis=0), size=3)
    peak = float(np.percentile(projection, 99.5))
    if peak <= 0.02:
        raise ValueError("no fundus field: the image is (nearly) black")
    mask = projection > 0.12 * peak
    mask = ndimage.binary_opening(mask, iterations=2)
    labels, count = ndimage.label(mask)
    if count == 0:
        raise ValueError("no fundus field found")
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    field = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))
    h, w = field.shape
    if field.sum() < min_fraction * h * w:
        raise ValueError(f"no fundus field: the brightest region covers {field.mean():.1%} of the image")
    rim = field & ~ndimage.binary_erosion(field)
    ys, xs = np.nonzero(rim)
    inside = (ys > 1) & (ys < h - 2) & (xs > 1) & (xs < w - 2)
    if inside.sum() < 12:
        # The field fills the frame: the inscribed circle is the best we can say.
        return Circle((h - 1) / 2, (w - 1) / 2, min(h, w) / 2)
    return _fit_circle(ys[inside].astype(float), xs[inside].astype(float))


def _fit_circle(ys: np.ndarray, xs: np.ndarray) -> Circle:
    """Least-squares circle (Kasa): x^2 + y^2 = 2 a x + 2 b y + c, r^2 = c + a^2 + b^2.

    Rim pixels are the outermost pixels inside the field, whose centres lie half a pixel within its edge.
    """
    design = np.stack([2 * xs, 2 * ys, np.ones_like(xs)], axis=1)
    (a, b, c), *_ = np.linalg.lstsq(design, xs**2 + ys**2, rcond=None)
    return Circle(cy=float(b), cx=float(a), r=float(np.sqrt(c + a * a + b * b)) + 0.5)


def disc_mask(size: int, margin: float = 0.0) -> np.ndarray:
    """(size, size) bool: True inside the centred circle of radius size / 2 - margin."""
    yy, xx = np.mgrid[:size, :size]
    centre = (size - 1) / 2
    return (yy - centre) ** 2 + (xx - centre) ** 2 <= (size / 2 - margin) ** 2


def crop_to_field(frames: np.ndarray, circle: Circle, size: int) -> np.ndarray:
    """Square crop around the field, zero outside it, resized to (T, size, size) float32 in [0, 1].

    Pixels outside the circle are zeroed *before* resizing as well as after, so burned-in text next to the
    field cannot bleed into its rim through the resampling kernel.
    """
    t, h, w = frames.shape
    yy, xx = np.mgrid[:h, :w]
    outside = (yy - circle.cy) ** 2 + (xx - circle.cx) ** 2 > circle.r**2
    side = int(np.ceil(2 * circle.r))
    top, left = int(round(circle.cy - side / 2 + 0.5)), int(round(circle.cx - side / 2 + 0.5))
    padded = np.zeros((t, side, side), np.float32)
    ys = slice(max(top, 0), min(top + side, h))
    xs = slice(max(left, 0), min(left + side, w))
    masked = np.where(outside[None], 0.0, frames).astype(np.float32)
    padded[:, ys.start - top : ys.stop - top, xs.start - left : xs.stop - left] = masked[:, ys, xs]
    resized = np.stack([resize(frame, size) for frame in padded])
    return np.where(disc_mask(size)[None], resized, 0.0).astype(np.float32)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W) float32 -> (size, size) float32; antialiased when shrinking (Pillow's filters widen)."""
    if image.shape == (size, size):
        return image.astype(np.float32)
    out = Image.fromarray(image.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float32)


def resample_time(
    frames: np.ndarray, times_s: np.ndarray | None, n: int, interp: str = "time"
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Linearly interpolate (T, H, W) frames to n frames; returns (frames, their times or None, method used).

    "time": n frames evenly spaced in time from the first to the last source frame (needs times; falls back
    to "index" when they are missing). "index": n frames evenly spaced over the source frame index, the
    paper's method; their times are interpolated the same way when known.
    """
    if interp not in INTERPOLATIONS:
        raise ValueError(f"interp {interp!r} is not one of {INTERPOLATIONS}")
    count = len(frames)
    if count < 2:
        raise ValueError(f"{count} frame(s); a video needs at least two")
    index = np.arange(count, dtype=np.float64)
    if times_s is not None:
        times_s = np.asarray(times_s, dtype=np.float64)
        if len(times_s) != count:
            raise ValueError(f"{len(times_s)} frame times for {count} frames")
        if np.any(np.diff(times_s) <= 0):
            raise ValueError("frame times are not strictly increasing")
    if interp == "time" and times_s is not None:
        targets = np.linspace(times_s[0], times_s[-1], n)
        positions = np.interp(targets, times_s, index)
        return _lerp(frames, positions), targets, "time"
    positions = np.linspace(0, count - 1, n)
    out_times = None if times_s is None else np.interp(positions, index, times_s)
    return _lerp(frames, positions), out_times, "index"


def _lerp(frames: np.ndarray, positions: np.ndarray) -> np.ndarray:
    lower = np.clip(np.floor(positions).astype(int), 0, len(frames) - 1)
    upper = np.minimum(lower + 1, len(frames) - 1)
    weight = (positions - lower).astype(np.float32)[:, None, None]
    return (1 - weight) * frames[lower] + weight * frames[upper]


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8 with rounding."""
    return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)
