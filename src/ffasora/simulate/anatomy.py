"""Static anatomy of one eye at the render size: field, disc, fovea/FAZ, vessels, capillaries, choroid, RPE.

Everything is built once per case in the canonical right-eye frame (disc on the image's right); a left eye is
the mirror image, applied at the very end (``render.py``). Scales follow design reference §2.1 for a 50°
fundus-camera field: 14.4 mm across the frame, about 28 µm per pixel at 512 px.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ffasora.simulate.vessels import ARTERY, VEIN, VesselEdits, VesselMaps, grow_trees, rasterise

FIELD_MM = 14.4  # 50° at 0.288 mm/degree (§2.1)
DD_MM = 1.7  # disc diameter


@dataclass
class Anatomy:
    """Per-pixel anatomy maps (H, W) and landmarks of one canonical-OD eye.

    ``to_px`` converts mm to px; positions in mm are relative to the fovea (x right, y down).
    """

    size: int
    to_px: float
    fovea_px: np.ndarray  # (2,) x, y
    disc_mm: np.ndarray  # (2,) disc centre relative to the fovea
    disc_radius_mm: float
    faz_radius_mm: float
    x_mm: np.ndarray  # (H, W) pixel centres in mm relative to the fovea
    y_mm: np.ndarray
    fov: np.ndarray  # bool circular aperture
    disc: np.ndarray  # float 0..1 disc area (soft)
    disc_rim: np.ndarray  # float ring inside the margin (late rim stain)
    faz: np.ndarray  # bool
    art: VesselMaps
    vein: VesselMaps
    capillary: np.ndarray  # ρ_cap, capillary density * texture
    cap_delay_s: np.ndarray  # arterial path delay of the nearest feeder (s)
    lobule: np.ndarray  # int choroidal lobule id
    n_lobules: int
    rpe: np.ndarray  # RPE transmission T_rpe
    choroid_texture: np.ndarray
    arcade_mm: float  # radius of the temporal arcades about the fovea

    def mm_to_px(self, xy_mm: np.ndarray) -> np.ndarray:
        return np.asarray(xy_mm) * self.to_px + self.fovea_px

    def dist_mm(self, xy_mm: np.ndarray | tuple[float, float]) -> np.ndarray:
        return np.hypot(self.x_mm - xy_mm[0], self.y_mm - xy_mm[1])

    @property
    def disc_dist_mm(self) -> np.ndarray:
        return self.dist_mm(self.disc_mm)


def band_noise(rng: np.random.Generator, size: int, sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-filtered white noise (H, W); coarse noise is drawn at low resolution."""
    factor = int(max(1, min(sigma_px // 3, size // 16)))
    small = -(-size // factor)
    n = ndimage.gaussian_filter(rng.standard_normal((small, small)).astype(np.float32), sigma_px / factor)
    if factor > 1:
        n = ndimage.zoom(n, factor, order=1, prefilter=False)[:size, :size]
    return (n - n.mean()) / max(float(n.std()), 1e-6)


def build_anatomy(
    rng: np.random.Generator,
    size: int,
    edits: VesselEdits | None = None,
    faz_scale: float = 1.0,
    v_art_mm_s: float = 8.0,
) -> Anatomy:
    """Sample and rasterise one eye's anatomy (§6.1 step 2). ``faz_scale`` > 1 enlarges the FAZ."""
    to_px = size / FIELD_MM
    centre_mm = np.array([rng.uniform(1.4, 1.9), rng.uniform(-0.3, 0.1)])  # field centre seen from the fovea
    fovea_px = np.array([size / 2.0, size / 2.0]) - centre_mm * to_px
    disc_mm = np.array([rng.uniform(4.2, 4.8), -rng.uniform(0.15, 0.5)])  # fovea sits below the disc (§2.2)
    disc_r = rng.uniform(0.78, 0.92)
    faz_r = rng.uniform(0.22, 0.3) * faz_scale
    aspect = rng.uniform(1.05, 1.15)  # slightly vertical ellipse
    # the trees get their own stream drawn before any size-dependent noise: same vessels at every size
    trees = grow_trees(
        np.random.default_rng(rng.integers(2**63)), disc_mm, 0.475 * FIELD_MM, centre_mm, faz_r, edits
    )
    jj, ii = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    x_mm, y_mm = (jj - fovea_px[0]) / to_px, (ii - fovea_px[1]) / to_px
    fov = np.hypot(jj - (size - 1) / 2, ii - (size - 1) / 2) <= 0.475 * size

    ell = np.hypot((x_mm - disc_mm[0]), (y_mm - disc_mm[1]) / aspect) / disc_r
    soft = max(0.6 / (disc_r * to_px), 0.02)
    disc = np.clip((1.0 - ell) / soft + 0.5, 0, 1).astype(np.float32)
    rim = (np.clip(1.0 - np.abs(ell - 0.9) / 0.07, 0, 1) * (ell < 1.0)).astype(np.float32)

    r_fov = np.hypot(x_mm, y_mm)
    faz_edge = faz_r * (1.0 + 0.12 * band_noise(rng, size, 0.08 * to_px + 0.5) * (faz_scale > 1.0))
    faz = r_fov < faz_edge

    origin = fovea_px.astype(np.float64)
    art = rasterise(trees.of(ARTERY), size, to_px, origin)
    vein = rasterise(trees.of(VEIN), size, to_px, origin)

    # capillary bed: band-limited texture, densest in the perifoveal ring, absent in the FAZ (§2.2)
    texture = 0.55 + 0.45 * np.clip(band_noise(rng, size, max(0.45, 0.012 * to_px)), -2, 2) / 2
    ring = 1.0 + 0.5 * np.exp(-(((r_fov - faz_edge - 0.15) / 0.25) ** 2))
    capillary = (texture * ring * (r_fov > faz_edge) * np.clip((r_fov - faz_edge) / 0.08, 0, 1)).astype(
        np.float32
    )
    cap_delay = _nearest_artery_delay(art, size, v_art_mm_s)

    lobule, n_lob = _lobules(rng, size, to_px)
    # RPE + macular pigment transmission: ~0.15 at the fovea, 0.3-0.45 in the periphery, mottled (§2.2)
    periphery = rng.uniform(0.28, 0.4)
    rpe = 0.15 + (periphery - 0.15) * (1.0 - np.exp(-((r_fov / rng.uniform(1.6, 2.4)) ** 2)))
    rpe = rpe * (1.0 + 0.08 * band_noise(rng, size, 0.1 * to_px + 0.5))
    choroid_texture = 1.0 + 0.08 * band_noise(rng, size, 0.04 * to_px + 0.5)
    return Anatomy(
        size=size,
        to_px=to_px,
        fovea_px=fovea_px,
        disc_mm=disc_mm,
        disc_radius_mm=float(disc_r),
        faz_radius_mm=float(faz_r),
        x_mm=x_mm,
        y_mm=y_mm,
        fov=fov,
        disc=disc,
        disc_rim=rim,
        faz=faz,
        art=art,
        vein=vein,
        capillary=capillary,
        cap_delay_s=cap_delay,
        lobule=lobule,
        n_lobules=n_lob,
        rpe=rpe.astype(np.float32),
        choroid_texture=choroid_texture.astype(np.float32),
        arcade_mm=3.0,
    )


def _nearest_artery_delay(art: VesselMaps, size: int, v_art: float) -> np.ndarray:
    """Arterial path delay s/v_art of the nearest artery, at quarter resolution then upsampled (it is smooth)."""
    step = max(1, size // 128)
    small = art.mask[::step, ::step]
    if not small.any():
        return np.zeros((size, size), np.float32)
    _, (ii, jj) = ndimage.distance_transform_edt(~small, return_indices=True)
    delay = art.s[::step, ::step][ii, jj] / v_art
    delay = ndimage.gaussian_filter(delay, 2.0)
    return np.kron(delay, np.ones((step, step), np.float32))[:size, :size].astype(np.float32)


def _lobules(rng: np.random.Generator, size: int, to_px: float) -> tuple[np.ndarray, int]:
    """Voronoi mosaic of choroidal lobules about 0.3-0.7 mm across (§2.2), built at <= 128 px and repeated."""
    step = max(1, size // 128)
    small = -(-size // step)
    lob_px = max(2.0, 0.5 * to_px / step)
    n = max(16, int((small / lob_px) ** 2))
    seeds = np.full((small, small), True)
    ys, xs = rng.integers(0, small, n), rng.integers(0, small, n)
    seeds[ys, xs] = False
    labels = np.full((small, small), -1, np.int32)
    labels[ys, xs] = np.arange(n, dtype=np.int32)
    _, (ii, jj) = ndimage.distance_transform_edt(seeds, return_indices=True)
    lobule = labels[ii, jj]
    if step > 1:
        lobule = np.repeat(np.repeat(lobule, step, axis=0), step, axis=1)[:size, :size]
    return lobule, n
