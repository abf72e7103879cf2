"""Physiology checks on a video, measured inside the ground-truth masks of a simulated case (simulator §6.8).

1. Arterial filling before venous: the artery mask reaches half its maximum brightness before the vein mask.
2. Leakage grows: inside each leaking lesion (grown by a few pixels), the area above half the final maximum
   does not shrink (2 % tolerance) and the late mean exceeds the early mean.
3. Window defects fade late: the lesion's late brightness is at most 0.6 of its peak, and its contrast to
   the surround does not rise late (at most 1.1 x the peak contrast).
4. Non-perfusion stays dark: after arterial filling, the non-perfused region stays below 0.8 x its
   surrounding ring in every frame.

The masks describe the anatomy that produced the *reference* video, so the checks apply to generated videos
that share it (the reference itself, layout-conditioned generation, or a re-simulation); each check that
cannot be measured (no such mask, a lesion too small) is reported as ``None``, not as a pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from ffasora.findings.ontology import FINDING_CODES

ARTERY_KEYS = ("vessels_art", "artery", "arteries", "art")
VEIN_KEYS = ("vessels_vein", "vein", "veins")
NPA_KEYS = ("lesion_NPA", "npa", "NPA", "nonperfusion")
CHECKS = ("arterial_before_venous", "leakage_growth", "window_defect_fading", "nonperfusion_dark")


def _static(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    return (mask.any(axis=0) if mask.ndim == 3 else mask).astype(bool)


def _find(masks: Mapping[str, np.ndarray], keys: Sequence[str]) -> np.ndarray | None:
    for key in keys:
        if key in masks and _static(masks[key]).any():
            return _static(masks[key])
    return None


def lesion_masks(masks: Mapping[str, np.ndarray], kinetic_class: str) -> list[np.ndarray]:
    """Static masks of lesions whose code has ``kinetic_class`` (keys ``lesion_<CODE>[...]``)."""
    out = []
    for key, value in masks.items():
        if not key.startswith("lesion_"):
            continue
        rest = key[len("lesion_") :]
        # longest matching code: "lesion_MACROANEURYSM" is not a microaneurysm ("MA")
        code = max((c for c in FINDING_CODES if rest == c or rest.startswith(c + "_")), key=len, default=None)
        if code and kinetic_class in FINDING_CODES[code].kinetic_classes and _static(value).any():
            out.append(_static(value))
    return out


def region_curve(video: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(T,) mean brightness of (T, H, W) frames inside a (H, W) mask."""
    if mask.shape != video.shape[1:]:
        raise ValueError(f"mask {mask.shape} does not match frames {video.shape[1:]}")
    return video[:, mask].astype(np.float64).mean(axis=1)


def half_max_time(curve: np.ndarray, times: np.ndarray) -> float:
    """First time the curve reaches half way from its first value to its maximum (linear interpolation)."""
    level = curve[0] + 0.5 * (curve.max() - curve[0])
    k = int(np.argmax(curve >= level))
    if k == 0:
        return float(times[0])
    frac = (level - curve[k - 1]) / max(curve[k] - curve[k - 1], 1e-12)
    return float(times[k - 1] + frac * (times[k] - times[k - 1]))


def arterial_before_venous(
    video: np.ndarray, times: np.ndarray, artery: np.ndarray, vein: np.ndarray
) -> bool:
    return half_max_time(region_curve(video, artery), times) < half_max_time(region_curve(video, vein), times)


def leakage_grows(video: np.ndarray, lesion: np.ndarray, tolerance: float = 0.02) -> bool:
    region = ndimage.binary_dilation(lesion, iterations=max(1, video.shape[-1] // 64))
    values = video[:, region].astype(np.float64)  # (T, P)
    level = 0.5 * values[-1].max()
    area = (values >= level).mean(axis=1)
    onset = int(np.argmax(area > 0))
    grows = bool(np.all(np.diff(area[onset:]) >= -tolerance))
    third = max(1, len(values) // 3)
    return grows and values[-third:].mean() > values[:third].mean()


def _ring(mask: np.ndarray, width: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, iterations=width) & ~mask


def window_defect_fades(video: np.ndarray, lesion: np.ndarray) -> bool:
    inside = region_curve(video, lesion)
    ring = region_curve(video, _ring(lesion, max(2, video.shape[-1] // 32)))
    peak = int(np.argmax(inside))
    contrast = inside - ring
    late = inside[-1] <= 0.6 * inside[peak] if inside[peak] > 0 else False
    return bool(late and contrast[-1] <= 1.1 * max(contrast[peak], 0.0) + 1e-9)


def nonperfusion_dark(
    video: np.ndarray, times: np.ndarray, region: np.ndarray, artery: np.ndarray | None
) -> bool:
    inside = region_curve(video, region)
    ring = region_curve(video, _ring(region, max(2, video.shape[-1] // 32)))
    start = 0
    if artery is not None:
        t50 = half_max_time(region_curve(video, artery), times)
        start = int(np.searchsorted(times, t50))
    after = slice(min(start, len(times) - 1), None)
    return bool(np.all(inside[after] < 0.8 * ring[after]))


def physiology_checks(
    video: np.ndarray, times: Sequence[float] | np.ndarray | None, masks: Mapping[str, np.ndarray]
) -> dict[str, bool | None]:
    """The four checks for one (T, H, W) video; ``None`` where the case has nothing to check."""
    video = np.asarray(video)
    t = np.asarray(times if times is not None else np.arange(len(video)), dtype=np.float64)
    if len(t) != len(video):
        t = np.linspace(t[0], t[-1], len(video))
    sized = {k: v for k, v in masks.items() if np.asarray(v).shape[-2:] == video.shape[1:]}
    artery, vein = _find(sized, ARTERY_KEYS), _find(sized, VEIN_KEYS)
    out: dict[str, bool | None] = dict.fromkeys(CHECKS)
    if artery is not None and vein is not None:
        out["arterial_before_venous"] = arterial_before_venous(video, t, artery, vein)
    leaks = [m for m in lesion_masks(sized, "LK") if m.sum() >= 4]
    if leaks:
        out["leakage_growth"] = all(leakage_grows(video, m) for m in leaks)
    windows = [m for m in lesion_masks(sized, "WD") if m.sum() >= 4]
    if windows:
        out["window_defect_fading"] = all(window_defect_fades(video, m) for m in windows)
    npa = _find(sized, NPA_KEYS)
    if npa is not None and npa.sum() >= 4:
        out["nonperfusion_dark"] = nonperfusion_dark(video, t, npa, artery)
    return out


def pass_rates(results: Sequence[Mapping[str, bool | None]]) -> dict[str, Any]:
    """Per check: how many videos it applied to and the fraction that passed."""
    out: dict[str, Any] = {}
    for check in CHECKS:
        applied = [bool(r[check]) for r in results if r.get(check) is not None]
        out[check] = {"n": len(applied), "pass_rate": float(np.mean(applied)) if applied else None}
    return out
