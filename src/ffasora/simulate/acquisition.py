"""The camera: optics, eye motion, auto-gain, noise and the circular field mask (design reference §2.2, §6.4).

Turns radiometric frames (fluorescence units, arterial first-pass peak = 1) into the uint8 display frames a
fundus camera exports. All nuisance settings are drawn once per case from the case's generator and returned
with the per-frame motion, so evaluation can undo or ignore them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Camera:
    vignetting: float  # radial fall-off at the rim (0.2-0.45)
    gradient: float  # slight left-right illumination gradient
    defocus_px: float  # mean extra blur at 512 px
    haze: float  # media veil (0-0.2)
    motion_px: float  # random-walk step of eye motion at 512 px
    rotation_deg: float
    gain_target: float  # auto-gain brings the 99.5th percentile here
    gain_cap: (
        float  # ... with at most this multiple of the gain at the brightest frame, so dim frames stay dim
    )
    gamma: float
    read_noise: float
    photons: float  # photon scale of the Poisson part

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def sample_camera(rng: np.random.Generator) -> Camera:
    return Camera(
        vignetting=float(rng.uniform(0.2, 0.45)),
        gradient=float(rng.uniform(-0.08, 0.08)),
        defocus_px=float(rng.uniform(0.0, 0.8)),
        haze=float(rng.uniform(0.0, 0.12)),
        motion_px=float(rng.uniform(0.1, 0.5)),
        rotation_deg=float(rng.uniform(0.0, 0.4)),
        gain_target=float(rng.uniform(0.85, 0.95)),
        gain_cap=float(rng.uniform(1.3, 2.0)),
        gamma=float(rng.uniform(0.8, 1.0)),
        read_noise=float(rng.uniform(0.005, 0.015)),
        photons=float(rng.uniform(300.0, 900.0)),
    )


def field_mask(size: int) -> np.ndarray:
    """Circular aperture (H, W) bool, 0.95 of the frame height (§2.2)."""
    jj, ii = np.meshgrid(np.arange(size), np.arange(size))
    return np.hypot(jj - (size - 1) / 2, ii - (size - 1) / 2) <= 0.475 * size


def acquire(
    frames: np.ndarray,
    cam: Camera,
    rng: np.random.Generator,
    motion: bool = True,
    transit: int | None = None,
    noise: bool = True,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Radiometric (T, H, W) float32 -> display (T, H, W) uint8 and per-frame motion/gain records.

    ``transit``: how many leading frames belong to the dye transit (the gain is set on the brightest of
    them); all frames when None. ``noise=False`` leaves out the sensor noise and nothing else: the noise is
    still drawn, so the motion that follows it, and so every other pixel, is that of the noisy video.
    """
    t_n, size, _ = frames.shape
    scale = size / 512.0
    fov = field_mask(size)
    jj, ii = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size))
    light = (1.0 - cam.vignetting * np.clip(np.hypot(jj, ii) / 0.95, 0, 1) ** 2.5) * (1.0 + cam.gradient * jj)
    # the photographer holds the gain set on the brightest transit frame through the transit, then raises
    # it for the dimmer late frames, at most by gain_cap (so late frames stay darker, §2.2)
    levels = np.percentile(frames[:, fov][:, ::97], 99.5, axis=1)
    k_peak = int(np.argmax(levels[: max(1, transit if transit is not None else len(levels))]))
    g_peak = cam.gain_target / max(float(levels[k_peak]), 1e-6)
    shift = np.zeros(2)
    angle = 0.0
    sub_fov = np.zeros_like(fov)
    sub_fov[::4, ::4] = fov[::4, ::4]
    out = np.zeros(frames.shape, np.uint8)
    records: list[dict[str, Any]] = []
    for k in range(t_n):
        blur = np.hypot(0.6, cam.defocus_px * rng.uniform(0.5, 1.5)) * scale
        f = ndimage.gaussian_filter(frames[k], blur, truncate=3.0)
        f = f + cam.haze * float(f[fov].mean())
        f = f * light
        if motion and k > 0:  # eye motion: a bounded random walk of translation and rotation
            shift = np.clip(shift + rng.normal(0, cam.motion_px * scale, 2), -1.5 * scale, 1.5 * scale)
            angle = float(np.clip(angle + rng.normal(0, cam.rotation_deg), -1.0, 1.0))
            f = _affine(f, shift, angle)
        if k <= k_peak:
            gain = g_peak
        else:
            p = float(np.percentile(f[sub_fov], 99.5))
            gain = min(cam.gain_target / max(p, 1e-6), cam.gain_cap * g_peak)
        g = np.clip(f * gain, 0, None) ** cam.gamma
        # Poisson-Gaussian noise as one Gaussian draw: variance g / photons + read²
        sigma = np.sqrt(g * (1.0 / cam.photons) + cam.read_noise**2)
        draw = rng.standard_normal(g.shape, np.float32)
        noisy = g + sigma * draw if noise else g
        u8 = np.clip(np.round(noisy * 255.0), 0, 255).astype(np.uint8)
        u8[~fov] = 0
        out[k] = u8
        records.append(
            {
                "shift_px": [round(float(x), 3) for x in shift],
                "rotation_deg": round(angle, 4),
                "gain": round(float(gain), 4),
            }
        )
    return out, records


def _affine(img: np.ndarray, shift: np.ndarray, angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = (np.array(img.shape) - 1) / 2.0
    offset = centre - rot @ centre - shift[::-1]
    return ndimage.affine_transform(img, rot, offset=offset, order=1, mode="constant")
