"""Vessel fidelity: does a video keep what a reader of angiograms looks at, the vessel tree and small dots?

PSNR and a 96 px classifier forgive blur; a clinician does not. Two kinds of measure:

* **paired** (a reconstruction, or a video generated for a simulated eye's own anatomy, against that eye's
  noise-free twin): PSNR / SSIM inside the field of view, and the *retention* of local contrast, the mean of a
  structure minus the mean of the vessel-free background right around it, as a fraction of the clean video's,
  for the vessel tree in the arterio-venous frames and for microaneurysms from the arterio-venous phase on.
  A perfect copy keeps 1.0, a Gaussian blur of 1 px keeps well under half of the vessels', another eye ~0.
* **unpaired** (report-conditioned videos, which draw their own vessels): *vessel visibility*, the band-pass
  (difference of Gaussians) response of the brightest ridge pixels relative to the field's mean brightness,
  in the bright frame where it peaks. It needs no mask; it is read against the spread of the same number on real
  videos (their 10-90 % range).

All inputs are (T, H, W) uint8 or float frames on the same grey scale; masks are (H, W) bool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

from ffasora.evaluate.paired import ssim

# frames in which arteries and veins are both filled; microaneurysms are read from the same phases on
VESSEL_PHASES = ("early_AV", "late_AV", "venous")
DOT_PHASES = ("early_AV", "late_AV", "venous", "mid")
# band-pass scales at 128 px (they grow with the frame): vessels are 1-3 px wide there
BAND_SIGMAS_PX = (1.0, 3.0)
BRIGHT_FRAME = 0.5  # frames at least this bright (field mean, share of the brightest) are searched
RIDGE_FRACTION = 0.05  # share of field pixels counted as ridge: about the vessel tree's share of the fundus


def surround(structure: np.ndarray, background: np.ndarray, gap: int = 1, width: int = 2) -> np.ndarray:
    """Background pixels between ``gap`` and ``gap + width`` pixels away from ``structure``."""
    near = ndimage.binary_dilation(structure, iterations=gap) if gap else structure
    return ndimage.binary_dilation(structure, iterations=gap + width) & ~near & background


def local_contrast(video: np.ndarray, structure: np.ndarray, around: np.ndarray) -> np.ndarray:
    """(T,) mean inside ``structure`` minus mean inside ``around``, per frame."""
    v = np.asarray(video, np.float64)
    if not structure.any() or not around.any():
        return np.full(len(v), np.nan)
    return v[:, structure].mean(axis=1) - v[:, around].mean(axis=1)


def contrast_retention(
    video: np.ndarray, clean: np.ndarray, structure: np.ndarray, around: np.ndarray, frames: Sequence[int]
) -> float:
    """The video's local contrast summed over ``frames`` as a fraction of the clean video's (NaN if none)."""
    idx = np.asarray(frames, dtype=np.int64)
    if idx.size == 0:
        return float("nan")
    ref = local_contrast(clean[idx], structure, around)
    keep = np.abs(ref) > 1e-6
    if not keep.any():
        return float("nan")
    got = local_contrast(video[idx], structure, around)
    return float(np.sum(got[keep]) / np.sum(ref[keep]))


def phase_frames(phases: Sequence[str], wanted: Sequence[str]) -> list[int]:
    return [i for i, p in enumerate(phases) if p in wanted]


def paired_fidelity(
    video: np.ndarray, clean: np.ndarray, masks: Mapping[str, np.ndarray], phases: Sequence[str]
) -> dict[str, float]:
    """PSNR / SSIM in the field of view and vessel / microaneurysm contrast retention against the clean twin.

    ``masks`` are the simulator's ground truth (``fov``, ``vessels``, ``vessel_free``, optionally
    ``lesion_MA``); ``phases`` the phase label of each frame.
    """
    video, clean = np.asarray(video, np.float64), np.asarray(clean, np.float64)
    if video.shape != clean.shape or video.ndim != 3:
        raise ValueError(f"video {video.shape} and clean twin {clean.shape}: expected equal (T, H, W) shapes")
    if len(phases) != len(video):
        raise ValueError(f"{len(phases)} phase labels for {len(video)} frames")
    fov = masks["fov"]
    rows, cols = np.nonzero(fov)
    box = (slice(None), slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    a, b = np.where(fov, video, 0.0)[box], np.where(fov, clean, 0.0)[box]
    mse = float(np.mean((video[:, fov] - clean[:, fov]) ** 2))  # pooled: dark early frames match exactly
    out = {
        "psnr": float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf"),
        "ssim": float(np.mean([ssim(x, y) for x, y in zip(a, b, strict=True)])),
    }
    background = masks["vessel_free"] & fov
    vessels = masks["vessels"] & fov
    out["vessel_retention"] = contrast_retention(
        video, clean, vessels, surround(vessels, background), phase_frames(phases, VESSEL_PHASES)
    )
    dots = masks.get("lesion_MA")
    if dots is not None and (dots & fov).any():
        out["dot_retention"] = contrast_retention(
            video, clean, dots & fov, surround(dots & fov, background & ~dots),
            phase_frames(phases, DOT_PHASES),
        )  # fmt: skip
    return out


def field_of_view(frame_stack: np.ndarray) -> np.ndarray:
    """The lit circle of a video: pixels whose mean over time is above a tenth of the brightest decile."""
    mean = np.asarray(frame_stack, np.float64).mean(axis=0)
    return ndimage.binary_erosion(mean > 0.1 * np.percentile(mean, 90), iterations=2)


def vessel_visibility(video: np.ndarray) -> float:
    """Band-pass ridge strength of the frame where it peaks, relative to that frame's field brightness.

    Per frame: the difference of Gaussians at ``BAND_SIGMAS_PX`` (scaled to the frame size) keeps structures
    one to a few vessel widths across and removes both the smooth background and most pixel noise; the mean
    of its brightest ``RIDGE_FRACTION`` of field pixels, over the field's mean grey level, is that frame's
    visibility. Blur and missing vessels lower it; it needs no mask, so it applies to any generated video.
    """
    v = np.asarray(video, np.float64)
    if v.ndim != 3:
        raise ValueError(f"video: expected (T, H, W), got shape {v.shape}")
    fov = field_of_view(v)
    inner = ndimage.binary_erosion(fov, iterations=max(2, round(4 * v.shape[-1] / 128)))
    if inner.sum() < 50:
        return float("nan")
    s1, s2 = (s * v.shape[-1] / 128.0 for s in BAND_SIGMAS_PX)
    levels = np.array([frame[fov].mean() for frame in v])
    best = 0.0
    for frame, level in zip(v, levels, strict=True):
        if level < BRIGHT_FRAME * levels.max() or level <= 1e-6:
            continue  # dark pre-arterial frames: a ratio over a near-zero level means nothing
        band = ndimage.gaussian_filter(frame, s1) - ndimage.gaussian_filter(frame, s2)
        values = band[inner]
        top = np.sort(values)[-max(1, int(RIDGE_FRACTION * values.size)) :]
        best = max(best, float(top.mean() / level))
    return best


BAND_EDGES_PX = (0.5, 1.0, 2.0, 4.0, 8.0)  # octave bands at 128 px: vessels to lesions to background
BAND_TIMES = 7  # evenly spaced frames per video


def band_features(video: np.ndarray) -> np.ndarray:
    """(len(BAND_EDGES_PX) - 1) * BAND_TIMES features: per frame, the RMS of each octave band of detail inside
    the field of view over the field's mean level, log-scaled. Blur empties the fine bands, noise alone
    barely fills them (the finest edge is half a pixel), so the set's distribution moves with sharpness."""
    v = np.asarray(video, np.float64)
    if v.ndim != 3:
        raise ValueError(f"video: expected (T, H, W), got shape {v.shape}")
    fov = field_of_view(v)
    inner = ndimage.binary_erosion(fov, iterations=max(2, round(4 * v.shape[-1] / 128)))
    scale = v.shape[-1] / 128.0
    out = []
    for k in np.linspace(0, len(v) - 1, BAND_TIMES).round().astype(int):
        frame = v[k]
        level = max(float(frame[fov].mean()) if fov.any() else 0.0, 1.0)
        blurred = [ndimage.gaussian_filter(frame, e * scale) for e in BAND_EDGES_PX]
        for fine, coarse in zip(blurred[:-1], blurred[1:], strict=True):
            band = (fine - coarse)[inner] if inner.any() else np.zeros(1)
            out.append(np.log(np.sqrt(np.mean(band**2)) / level + 1e-4))
    return np.asarray(out)


def within_range(
    values: Sequence[float], reference: Sequence[float], lo: float = 10, hi: float = 90
) -> float:
    """Share of ``values`` inside the ``lo``-``hi`` percentile range of ``reference``."""
    ref = np.asarray([x for x in reference if np.isfinite(x)])
    vals = np.asarray([x for x in values if np.isfinite(x)])
    if ref.size == 0 or vals.size == 0:
        return float("nan")
    a, b = np.percentile(ref, [lo, hi])
    return float(np.mean((vals >= a) & (vals <= b)))
