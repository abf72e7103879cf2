"""Physiology checks on a video, measured inside the ground-truth masks of a simulated case (simulator §6.8).

1. Arterial filling before venous: the artery-to-background contrast reaches half its maximum, and its
   maximum, before the vein's (contrast, not brightness, because the display auto-gain rescales every frame).
2. Leakage grows: the excess fluorescence of the lesion and its near surround over a far ring is positive in
   the last frame and higher than at 30 s (the near surround is included because leaking dye spreads into it).
3. Window defects fade late: the lesion's contrast to its surround peaks before the late phase and never
   rises late above 1.1 x that peak.
4. Non-perfusion stays dark: between the arteriovenous phase and 60 s the non-perfused region (vessels
   excluded) is darker on average than its perfused surround.

Only lesions whose code's primary kinetic class is leakage (LK) or window defect (WD) are checked.

Checks 1 and 2 fail a time-reversed and a frozen (one frame repeated) video of the same case
(tests/evaluate/test_evaluate_physiology.py). Check 3 does not: on simulated 128 px videos the window
defect's display contrast often stays high late, so a stricter test fails real videos as often as reversed
ones (docs/evaluation.md); read it as weak. Check 4 is spatial and is expected to survive both.

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


def lesion_masks(
    masks: Mapping[str, np.ndarray], kinetic_class: str, exclusive: bool = False
) -> list[np.ndarray]:
    """Static masks of lesions whose code's *primary* kinetic class is ``kinetic_class`` (``exclusive``: its
    only class) (keys ``lesion_<CODE>[_suffix]``). Mixed signs such as microaneurysms (IV+LK) are left out of
    the leakage check and drusen (WD+ST, which stain late) out of the fading check."""
    out = []
    for key, value in masks.items():
        if not key.startswith("lesion_"):
            continue
        rest = key[len("lesion_") :]
        # longest matching code: "lesion_MACROANEURYSM" is not a microaneurysm ("MA")
        code = max((c for c in FINDING_CODES if rest == c or rest.startswith(c + "_")), key=len, default=None)
        classes = FINDING_CODES[code].kinetic_classes if code else ()
        wanted = classes == (kinetic_class,) if exclusive else classes[:1] == (kinetic_class,)
        if wanted and _static(value).any():
            out.append(_static(value))
    return out


def region_curve(video: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(T,) mean brightness of (T, H, W) frames inside a (H, W) mask."""
    if mask.shape != video.shape[1:]:
        raise ValueError(f"mask {mask.shape} does not match frames {video.shape[1:]}")
    if not mask.any():  # e.g. a surround entirely covered by vessels: nothing to measure
        return np.full(len(video), np.nan)
    return video[:, mask].astype(np.float64).mean(axis=1)


def half_max_time(curve: np.ndarray, times: np.ndarray) -> float:
    """First time the curve reaches half way from its first value to its maximum (linear interpolation)."""
    level = curve[0] + 0.5 * (curve.max() - curve[0])
    k = int(np.argmax(curve >= level))
    if k == 0:
        return float(times[0])
    frac = (level - curve[k - 1]) / max(curve[k] - curve[k - 1], 1e-12)
    return float(times[k - 1] + frac * (times[k] - times[k - 1]))


def _ring(mask: np.ndarray, width: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, iterations=width) & ~mask


def _contrast(video: np.ndarray, region: np.ndarray, surround: np.ndarray) -> np.ndarray:
    """(T,) mean inside ``region`` minus mean inside ``surround``: contrast survives the display auto-gain."""
    return region_curve(video, region) - region_curve(video, surround)


def arterial_before_venous(
    video: np.ndarray, times: np.ndarray, artery: np.ndarray, vein: np.ndarray, background: np.ndarray
) -> bool:
    """Artery-to-background contrast reaches half its maximum before the vein's does, and peaks no later.
    (The peak order is what a time-reversed video gets wrong: its half-way times can still come out in order.)"""
    art, vein_c = _contrast(video, artery, background), _contrast(video, vein, background)
    in_order = half_max_time(art, times) < half_max_time(vein_c, times)
    return bool(in_order and times[int(np.argmax(art))] <= times[int(np.argmax(vein_c))])


def leakage_grows(video: np.ndarray, times: np.ndarray, lesion: np.ndarray, vessels: np.ndarray) -> bool:
    """Excess fluorescence of the lesion and its near surround over a far ring (vessels excluded) is positive in
    the last frame and higher than in the first frame at or after 30 s (simulator §6.8 #9: leakage keeps
    rising into the late phase). The near surround counts as lesion because leaking dye spreads into it: a
    ring right around a leaking disc brightens faster than the saturated disc itself."""
    w = max(2, video.shape[-1] // 20)
    near = ndimage.binary_dilation(lesion, iterations=w)
    far = ndimage.binary_dilation(lesion, iterations=3 * w) & ~ndimage.binary_dilation(
        lesion, iterations=2 * w
    )
    excess = _contrast(video, near & ~vessels, far & ~vessels)
    start = min(int(np.searchsorted(times, 30.0)), len(times) - 2)
    margin = float(np.ptp(video)) / 255  # one grey level of an 8-bit display
    return bool(excess[-1] > max(excess[start], 0.0) + margin)


def window_defect_fades(video: np.ndarray, times: np.ndarray, lesion: np.ndarray, other: np.ndarray) -> bool:
    """Simulator §6.8 #12 on display frames: the lesion-to-surround contrast (other lesions excluded) peaks
    before the late phase (300 s, or the last third of the frames) and never rises late above 1.1 x that
    peak. Absolute late/peak brightness is not used: the display auto-gain rescales every frame."""
    inside = lesion & ~other if (lesion & ~other).sum() > 4 else lesion
    contrast = _contrast(video, inside, _ring(lesion, max(2, video.shape[-1] // 32)) & ~other)
    late = times >= 300 if times[-1] >= 300 else np.arange(len(times)) >= 2 * len(times) // 3
    if late.all() or not late.any():
        return bool(contrast[-1] <= 1.1 * max(contrast.max(), 0.0))
    peak = float(contrast[~late].max())
    return bool(peak > 0 and contrast[late].max() <= 1.1 * peak)


def nonperfusion_dark(video: np.ndarray, times: np.ndarray, region: np.ndarray, vessels: np.ndarray) -> bool:
    """From 5 s after the first frame to 60 s (arteriovenous to venous phase), the non-perfused region
    (vessels excluded) is darker on average than its perfused surround."""
    window = (times > times[0] + 5) & (times < 60)
    if not window.any():
        window = np.arange(len(times)) >= len(times) // 4
    inside = region & ~vessels if (region & ~vessels).sum() > 4 else region
    surround = _ring(region, max(3, video.shape[-1] // 20)) & ~vessels
    return bool(region_curve(video[window], inside).mean() < region_curve(video[window], surround).mean())


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
    vessels = np.zeros(video.shape[1:], bool)
    for m in (artery, vein):
        if m is not None:
            vessels |= ndimage.binary_dilation(m, iterations=max(1, video.shape[-1] // 64))
    out: dict[str, bool | None] = dict.fromkeys(CHECKS)
    fov = _find(sized, ("fov",))
    background = (fov if fov is not None else np.ones(video.shape[1:], bool)) & ~vessels
    if artery is not None and vein is not None and background.any():
        out["arterial_before_venous"] = arterial_before_venous(video, t, artery, vein, background)
    leaks = [m for m in lesion_masks(sized, "LK") if m.sum() >= 4]
    if leaks:
        out["leakage_growth"] = all(leakage_grows(video, t, m, vessels) for m in leaks)
    windows = [m for m in lesion_masks(sized, "WD", exclusive=True) if m.sum() >= 4]
    if windows:
        lesions = [_static(v) for k, v in sized.items() if k.startswith("lesion_")]
        every = np.any(lesions, axis=0)
        out["window_defect_fading"] = all(window_defect_fades(video, t, m, every & ~m) for m in windows)
    npa = _find(sized, NPA_KEYS)
    if npa is not None and npa.sum() >= 4:
        out["nonperfusion_dark"] = nonperfusion_dark(video, t, npa, vessels)
    return out


def pass_rates(results: Sequence[Mapping[str, bool | None]]) -> dict[str, Any]:
    """Per check: how many videos it applied to and the fraction that passed."""
    out: dict[str, Any] = {}
    for check in CHECKS:
        applied = [bool(r[check]) for r in results if r.get(check) is not None]
        out[check] = {"n": len(applied), "pass_rate": float(np.mean(applied)) if applied else None}
    return out
