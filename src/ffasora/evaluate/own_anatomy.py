"""Physiology checks without masks: the lesion regions are found in the video itself.

A report-conditioned generator draws its own vessels and puts each lesion somewhere new inside the region the
report names, so the masks of the paired simulated case do not describe its video (the suite's "other anatomy"
control measures what a physiologically perfect video of another eye scores in those masks). Real archives
have no masks at all. Here the regions are estimated from the video, for the signs its report states, and the
checks of :mod:`ffasora.evaluate.physiology` are run on them unchanged:

- leakage (a stated code whose primary kinetic class is LK): the late hyperfluorescent region, found in the
  last frame alone; the check then compares that frame with the one at 30 s, so selection and test use
  different evidence.

A stated leak the video does not show (no late region) fails; it is not "unmeasurable". On the 494 val and
test videos of a 128 px simulated set this check passes every real video with a stated leak (175) and none
of the same videos played backwards or frozen, nor any of 148 videos without a leaking sign asked about one.

The other checks stay unmeasured (None) here. Arterial-before-venous needs artery and vein maps, which an
unlabelled 128 px video does not give; the window-defect check is weak even with true masks (physiology.py);
for non-perfusion, dark regions found the same way (below the smooth background over the arteriovenous
window) detected only 69 % of the stated non-perfusion at a 5 % false-positive rate on videos without it,
too weak to report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ffasora.evaluate import physiology
from ffasora.findings.ontology import FINDING_CODES

LATE_EXCESS = 0.2  # a late lesion is brighter than its smooth background by this share of the frame's range
MIN_AREA = 1 / 1024  # smallest late lesion kept (4 px at 64 x 64)


def field_of_view(video: np.ndarray) -> np.ndarray:
    """The exposed circle: pixels whose mean over time is above 5 % of the brightest mean, eroded a little."""
    mean = video.astype(np.float64).mean(axis=0)
    fov = mean > 0.05 * mean.max()
    return ndimage.binary_erosion(fov, iterations=max(1, video.shape[-1] // 32))


def excess_over_background(frame: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """Frame minus its smooth background (Gaussian of a tenth of the width, normalised inside the field so the
    dark border does not pull the background down), zero outside the field."""
    sigma = frame.shape[-1] / 10
    f = frame.astype(np.float64)
    weight = ndimage.gaussian_filter(fov.astype(np.float64), sigma)
    background = ndimage.gaussian_filter(f * fov, sigma) / np.maximum(weight, 1e-6)
    return np.where(fov, f - background, 0.0)


def _components(mask: np.ndarray, min_px: float) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask & False
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    return np.isin(labels, 1 + np.flatnonzero(sizes >= min_px))


def late_lesion(video: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """Pixels of the last frame at least ``LATE_EXCESS`` of its range above the smooth background."""
    last = video[-1].astype(np.float64)
    spread = np.percentile(last[fov], 99.5) - np.percentile(last[fov], 0.5) if fov.any() else 0.0
    bright = excess_over_background(last, fov) > LATE_EXCESS * max(spread, 1e-6)
    return _components(bright, MIN_AREA * video.shape[-1] * video.shape[-2])


def stated_leak(codes: Sequence[str]) -> str | None:
    """The first stated code whose primary kinetic class is leakage, or None."""
    return next(
        (c for c in codes if c in FINDING_CODES and FINDING_CODES[c].kinetic_classes[:1] == ("LK",)), None
    )


def own_anatomy_checks(
    video: np.ndarray, times: Sequence[float] | np.ndarray | None, codes: Sequence[str]
) -> dict[str, bool | None]:
    """The physiology checks of one (T, H, W) video in regions found in the video, for its report's ``codes``."""
    video = np.asarray(video)
    t = np.asarray(times if times is not None else np.arange(len(video)), dtype=np.float64)
    if len(t) != len(video):
        t = np.linspace(t[0], t[-1], len(video))
    out: dict[str, bool | None] = dict.fromkeys(physiology.CHECKS)
    leak_code = stated_leak(codes)
    if leak_code is None:
        return out
    fov = field_of_view(video)
    region = late_lesion(video, fov)
    if not region.any():  # the report states a leak the video does not show
        out["leakage_growth"] = False
        return out
    masks = {"fov": fov, f"lesion_{leak_code}": region}
    out["leakage_growth"] = physiology.physiology_checks(video, t, masks)["leakage_growth"]
    return out
