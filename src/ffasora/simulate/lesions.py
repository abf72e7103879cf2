"""Lesions as kinetic layers: what each finding code adds to, blocks in, or delays in the angiogram.

A ``Lesion`` is built from up to eight kinetic primitives (design reference §3.1, §6.3):

* ``Additive``  W(x) * curve(t - arrival): intravascular signs (IV), staining (ST), choroidal CNV networks;
* ``Leak``      A(t) * (M ⊛ G_σ(t)) with A non-decreasing and σ(t) = sqrt(σ0² + 2 D (t - t_on)) (LK);
* ``Pool``      a fixed compartment filled behind a front map: 1_Ω 1[front(x) <= t] A(t) (PL);
* ``block``     multiplicative transmission per depth (BL);
* ``window``    RPE transmission raised towards T_wd (WD);
* ``cap_scale`` capillary density edits (NP);
* ``delay``     arterial / venous / choroidal delays of a territory (DF).

Shapes are drawn on the anatomy's mm grid (canonical OD frame), so a lesion's size does not depend on the
render size. Every lesion keeps a static footprint mask; leak and pool lesions also get per-frame masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ffasora.simulate.anatomy import DD_MM, Anatomy, band_noise

RETINA, SUB = "retina", "sub"  # composite depth of additive/leak/pool layers (§6.3 composite)
PRE, INTRA = "pre", "intra"  # blocking depths (SUB also blocks)
SECTOR_DIRS = {
    "superotemporal": (-1.0, -1.0),
    "inferotemporal": (-1.0, 1.0),
    "superonasal": (1.0, -1.0),
    "inferonasal": (1.0, 1.0),
}


# The kinetic terms of a lesion (design reference §6.3), keyword-only so that every number is named where a
# lesion is built: "amp" is fluorescence relative to the retinal arteries' peak, "rate" the fill rate per unit
# of the plasma-dye integral ∫Cp (1 / (fluorescence * s)), times are seconds after injection.
@dataclass(kw_only=True)
class Additive:
    """Dye that follows a vascular curve (or stains tissue) where ``weight`` says."""

    weight: np.ndarray  # (H, W) float32
    curve: str  # a Curves table (art, cap, vein, chor) or "stain"
    arrival_s: float  # absolute time the curve starts (for "stain": onset)
    depth: str = RETINA
    rate: float = 0.05  # "stain" only: fill rate on ∫Cp


@dataclass(kw_only=True)
class Leak:
    """Dye leaking from ``source`` and spreading by diffusion: a Gaussian of width sqrt(sigma0² + 2 D t)."""

    source: np.ndarray  # (H, W) float32 0..1
    onset_s: float  # when leakage starts
    amp: float  # peak fluorescence
    rate: float  # amplitude fill rate on ∫Cp
    sigma0_mm: float  # initial spread
    d_mm2_min: float  # diffusion coefficient D, mm² per minute (§6.3 table)
    depth: str = RETINA


@dataclass(kw_only=True)
class Pool:
    """Dye pooling in a compartment, reached by a front (``front_s``: when it gets to each pixel)."""

    compartment: np.ndarray  # (H, W) bool
    front_s: np.ndarray  # (H, W) absolute time the front reaches each pixel (inf outside)
    amp: float  # fluorescence when full
    rate: float  # fill rate on ∫Cp
    depth: str = SUB
    weight: np.ndarray | None = None  # soft brightness inside the compartment (petaloid cysts); 1 if None


@dataclass
class Delay:
    """Extra arrival delay (s) for a territory: arteries/veins by quadrant id, or choroidal lobules."""

    art: dict[int, float] = field(default_factory=dict)
    vein: dict[int, float] = field(default_factory=dict)
    lobules: np.ndarray | None = None  # (n_lobules,) extra delay
    lobule_gain: np.ndarray | None = None  # (n_lobules,) amplitude factor
    boxcar: bool = False


@dataclass
class Lesion:
    code: str
    kinetic_class: str  # the dominant class used for onset/evolution wording
    footprint: np.ndarray  # (H, W) bool, final extent
    onset_s: float
    subtype: str | None = None
    additive: list[Additive] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    block: dict[str, np.ndarray] = field(default_factory=dict)
    window: np.ndarray | None = None  # (H, W) 0..1: how far T_rpe is replaced by T_wd
    cap_scale: np.ndarray | None = None
    delay: Delay | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- shapes


def ellipse(
    an: Anatomy, c: np.ndarray, a: float, b: float, angle: float = 0.0, soft_mm: float = 0.03
) -> np.ndarray:
    """Soft-edged ellipse (H, W) float32, semi-axes a, b mm, rotated by ``angle`` rad."""
    dx, dy = an.x_mm - c[0], an.y_mm - c[1]
    ca, sa = np.cos(angle), np.sin(angle)
    u, v = (ca * dx + sa * dy) / a, (-sa * dx + ca * dy) / b
    rho = np.sqrt(u * u + v * v)
    soft = max(soft_mm / min(a, b), 0.7 / (an.to_px * min(a, b)))
    return np.clip((1.0 - rho) / soft + 0.5, 0, 1).astype(np.float32)


def blob(
    an: Anatomy, rng: np.random.Generator, c: np.ndarray, radius: float, rough: float = 0.3
) -> np.ndarray:
    """Irregular blob (H, W) bool: an ellipse whose radius is modulated by smooth noise."""
    noise = band_noise(rng, an.size, max(1.0, 0.4 * radius * an.to_px))
    a = radius * rng.uniform(0.8, 1.25)
    e = ellipse(an, c, a, radius * radius / a, rng.uniform(0, np.pi), soft_mm=radius * 0.5)
    return (e + rough * noise * (e > 0.05)) > 0.5


def dots(an: Anatomy, centres: np.ndarray, sigma_mm: float, amp: np.ndarray | None = None) -> np.ndarray:
    """Sum of Gaussian dots (H, W) float32 of peak ~``amp`` at mm centres (N, 2); σ at least 0.6 px."""
    img = np.zeros((an.size, an.size), np.float32)
    px = an.mm_to_px(centres) if len(centres) else np.zeros((0, 2))
    ok = (px[:, 0] >= 0) & (px[:, 0] < an.size) & (px[:, 1] >= 0) & (px[:, 1] < an.size)
    amp = np.ones(len(centres)) if amp is None else amp
    np.add.at(img, (px[ok, 1].astype(int), px[ok, 0].astype(int)), amp[ok])
    sigma = max(0.6, sigma_mm * an.to_px)
    return (ndimage.gaussian_filter(img, sigma) * (2 * np.pi * sigma * sigma)).astype(np.float32)


def polar(c: tuple[float, float] | np.ndarray, r: float, angle: float) -> np.ndarray:
    return np.asarray(c, dtype=np.float64) + r * np.array([np.cos(angle), np.sin(angle)])


def sector_point(
    rng: np.random.Generator, sector: str, r_lo: float, r_hi: float, disc: np.ndarray | None = None
) -> np.ndarray:
    """A point r_lo..r_hi mm from the fovea in an anatomical sector (canonical OD frame).

    Nasal sectors lie beyond the disc, so with ``disc`` given they are placed about the disc instead.
    """
    sx, sy = SECTOR_DIRS[sector]
    angle = np.arctan2(sy, sx) + rng.uniform(-0.5, 0.5)
    if disc is not None and sx > 0:
        return polar(disc, 0.6 * rng.uniform(r_lo, r_hi), angle)
    return polar((0.0, 0.0), rng.uniform(r_lo, r_hi), angle)


def random_points(
    rng: np.random.Generator, n: int, r_lo: float, r_hi: float, temporal_bias: float = 0.0
) -> np.ndarray:
    """n points in an annulus about the fovea (mm), optionally denser temporally (x < 0)."""
    r = np.sqrt(rng.uniform(r_lo**2, r_hi**2, n))
    a = rng.uniform(0, 2 * np.pi, n)
    pts = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    flip = (pts[:, 0] > 0) & (rng.random(n) < temporal_bias)
    pts[flip, 0] *= -1
    return pts


def tuft(an: Anatomy, rng: np.random.Generator, c: np.ndarray, radius: float, loops: int) -> np.ndarray:
    """Neovascular tuft (H, W) float32: a tangle of small loops (§6.5, NVE/NVD/CNV lacy network)."""
    img = np.zeros((an.size, an.size), np.float32)
    for _ in range(loops):
        centre = polar(c, radius * np.sqrt(rng.random()) * 0.8, rng.uniform(0, 2 * np.pi))
        r = rng.uniform(0.15, 0.45) * radius
        t = np.linspace(0, 2 * np.pi, 64)
        wob = 1 + 0.25 * np.sin(3 * t + rng.uniform(0, 6))
        pts = centre + np.stack([r * wob * np.cos(t), r * wob * np.sin(t)], 1)
        px = an.mm_to_px(pts).astype(int)
        ok = (px[:, 0] >= 0) & (px[:, 0] < an.size) & (px[:, 1] >= 0) & (px[:, 1] < an.size)
        img[px[ok, 1], px[ok, 0]] = 1.0
    return np.clip(ndimage.gaussian_filter(img, 0.5) * 2.5, 0, 1).astype(np.float32)


def random_curve(
    an: Anatomy, rng: np.random.Generator, start: np.ndarray, length: float, wiggle: float
) -> np.ndarray:
    """A thin tortuous segment (H, W) float32 (IRMA, collaterals, telangiectatic capillaries)."""
    n = max(8, int(length / 0.02))
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, wiggle, n))
    pts = start + np.cumsum(0.02 * np.stack([np.cos(heading), np.sin(heading)], 1), axis=0)
    img = np.zeros((an.size, an.size), np.float32)
    px = an.mm_to_px(pts).astype(int)
    ok = (px[:, 0] >= 0) & (px[:, 0] < an.size) & (px[:, 1] >= 0) & (px[:, 1] < an.size)
    img[px[ok, 1], px[ok, 0]] = 1.0
    return np.clip(ndimage.gaussian_filter(img, 0.45) * 2.0, 0, 1).astype(np.float32)


def ring_of(mask: np.ndarray, width_px: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, iterations=max(1, width_px)) & ~mask


def front_from_point(an: Anatomy, c: np.ndarray, onset: float, r0: float, c_mm_sqrt_s: float) -> np.ndarray:
    """Ink-blot front (§6.3): radius r(t) = r0 + c sqrt(t - t_on), inverted to the time each pixel is reached."""
    d = np.maximum(an.dist_mm(c) - r0, 0.0)
    return (onset + (d / c_mm_sqrt_s) ** 2).astype(np.float32)


def smokestack_front(
    an: Anatomy, c: np.ndarray, top_y: float, onset: float, v_up_mm_s: float, width: float
) -> np.ndarray:
    """Smokestack front: a plume rising (image -y) at v_up, then spreading sideways under the top (§6.3)."""
    rise = np.maximum(c[1] - an.y_mm, 0.0)
    plume = (np.abs(an.x_mm - c[0]) < width) & (an.y_mm <= c[1] + 0.05)
    t_top = onset + max(c[1] - top_y, 0.0) / v_up_mm_s
    lateral = (
        t_top
        + np.abs(an.x_mm - c[0]) / (v_up_mm_s * 0.7)
        + np.maximum(an.y_mm - top_y, 0.0) / (v_up_mm_s * 0.4)
    )
    front = np.where(plume, onset + rise / v_up_mm_s, lateral)
    below = an.y_mm > c[1] + 0.05
    front = np.where(below, lateral + (an.y_mm - c[1]) / (v_up_mm_s * 0.3), front)
    return front.astype(np.float32)


def footprint_of(weight: np.ndarray, level: float = 0.25) -> np.ndarray:
    return np.asarray(weight > level)


def dd_area() -> float:
    """One disc area in mm² (extents in DA)."""
    return float(np.pi * (DD_MM / 2) ** 2)
