"""The colour fundus photograph (CFP) of a simulated eye: same anatomy and lesions as its angiogram.

An angiogram shows where fluorescein goes; a colour photograph shows what absorbs and scatters white light.
So the same lesion reads differently: a haemorrhage that blocks fluorescence is dark red, a hard exudate is a
sharp yellow deposit, a window defect (atrophy) is a pale patch through which the large choroidal vessels
show, a laser scar is a pigmented burn with a pale halo, and the vessels are red tubes (arteries lighter, with
a brighter central light reflex) instead of white dye columns.

The photograph is composed in display RGB (0..1) from back to front, in the order light meets the layers on
the way out of the eye:

    choroid and RPE pigment (colour, tigroid pattern, macular pigment)
      -> sub-RPE / subretinal lesions (drusen, PED, detachment, CNV, atrophy, scars, pigment)
      -> disc and cup -> inner retina (oedema, whitening, haemorrhage, exudate, cotton-wool spots)
      -> vessels -> camera (flash fall-off, colour cast, haze, blur, noise, aperture)

Everything is drawn on the canonical right-eye frame of ``Anatomy`` (a left eye is mirrored by the caller) and
from one generator, so a seed gives identical bytes. Lesion geometry is read from the ``Lesion`` objects the
angiogram was rendered from; nothing here draws a new lesion, except cotton-wool spots, which sit on the
border of simulated non-perfusion (design reference §3.2: the colour sign of capillary closure).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ffasora.simulate.anatomy import Anatomy, band_noise
from ffasora.simulate.lesions import INTRA, PRE, SUB, Lesion, ring_of
from ffasora.simulate.render import position_quadrant

# display-space colours (sRGB 0..1) of what the camera sees
ARTERY = np.array([0.72, 0.16, 0.09])
VEIN = np.array([0.48, 0.07, 0.07])
BLOOD = np.array([0.42, 0.04, 0.03])  # intraretinal blot/flame haemorrhage
PRERETINAL_BLOOD = np.array([0.58, 0.06, 0.04])
SUBRETINAL_BLOOD = np.array([0.40, 0.08, 0.05])
EXUDATE = np.array([0.98, 0.88, 0.42])
DRUSEN = np.array([0.95, 0.80, 0.45])
COTTON_WOOL = np.array([0.93, 0.90, 0.82])
PIGMENT = np.array([0.16, 0.10, 0.07])
SCLERA = np.array([0.96, 0.88, 0.74])  # what atrophy lets through between the choroidal vessels
CHOROID_VESSEL = np.array([0.86, 0.40, 0.22])
FIBROSIS = np.array([0.93, 0.88, 0.74])
CNV_MEMBRANE = np.array([0.60, 0.52, 0.38])  # grey-green subretinal membrane
OEDEMA = np.array([0.80, 0.66, 0.52])
DISC_RIM = np.array([0.97, 0.66, 0.48])  # neuroretinal rim: pink-orange
DISC_CUP = np.array([0.99, 0.92, 0.78])


@dataclass(frozen=True)
class PhotoLook:
    """The per-photograph draws: the eye's pigmentation and the camera's rendition."""

    pigment: float  # 0 blond fundus .. 1 heavily pigmented
    tigroid: float  # how much the large choroidal vessels show through a thin RPE
    cup_disc: float  # cup-to-disc diameter ratio
    foveal_reflex: float
    vignetting: float
    cast: tuple[float, float, float]  # RGB gains of the flash and sensor white balance
    exposure: float
    haze: float  # media opacity veil (cataract)
    blur_px: float  # at 512 px
    rim_flare: float  # bright ring at the aperture edge
    noise: float

    def as_dict(self) -> dict[str, Any]:
        return {
            k: [round(x, 4) for x in v] if isinstance(v, tuple) else round(v, 4)
            for k, v in asdict(self).items()
        }


def sample_look(rng: np.random.Generator) -> PhotoLook:
    pigment = float(rng.beta(2.0, 2.0))
    return PhotoLook(
        pigment=pigment,
        tigroid=float(rng.uniform(0.0, 1.0) * (1.0 - pigment)),
        cup_disc=float(rng.uniform(0.2, 0.55)),
        foveal_reflex=float(rng.uniform(0.0, 1.0)),
        vignetting=float(rng.uniform(0.25, 0.55)),
        cast=(float(rng.uniform(0.92, 1.06)), float(rng.uniform(0.88, 1.04)), float(rng.uniform(0.75, 1.15))),
        exposure=float(rng.uniform(0.85, 1.1)),
        haze=float(rng.uniform(0.0, 0.15)),
        blur_px=float(rng.uniform(0.5, 1.3)),
        rim_flare=float(rng.uniform(0.0, 0.25)),
        noise=float(rng.uniform(0.004, 0.012)),
    )


def _over(img: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """Paint ``colour`` (3,) or (H, W, 3) over ``img`` (H, W, 3) with coverage ``alpha`` (H, W), in place."""
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    img *= 1.0 - a
    img += a * colour


def _scale_to(img: np.ndarray, factor: np.ndarray | float) -> None:
    img *= np.asarray(factor, np.float32)[..., None] if np.ndim(factor) else factor


def render_fundus_photo(
    an: Anatomy, lesions: list[Lesion], rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """The colour photograph (H, W, 3) uint8 of one canonical-OD eye, and the draws that made it."""
    look = sample_look(rng)
    size, px = an.size, an.to_px
    r_fov = np.hypot(an.x_mm, an.y_mm)
    codes = {les.code for les in lesions}

    # --- choroid and RPE: orange-red, browner with more pigment; the macula darker (xanthophyll, RPE)
    base = (1 - look.pigment) * np.array([0.86, 0.42, 0.20]) + look.pigment * np.array([0.58, 0.25, 0.12])
    img = np.broadcast_to(base, (size, size, 3)).astype(np.float32).copy()
    ridges = _choroidal_vessels(rng, size, px)
    # dark interspaces between the large choroidal vessels, hidden under the denser macular RPE
    periphery = 1.0 - np.exp(-((r_fov / 2.5) ** 2))
    _scale_to(img, 1.0 - 0.22 * look.tigroid * periphery * (1.0 - ridges))
    _scale_to(img, 1.0 + 0.05 * band_noise(rng, size, max(0.6, 0.05 * px)))  # RPE mottling
    macula = np.exp(-((r_fov / rng.uniform(1.0, 1.5)) ** 2)).astype(np.float32)
    img *= (1.0 - 0.3 * macula[..., None] * np.array([0.8, 1.0, 1.2])).astype(np.float32)

    # --- deep lesions (beneath the RPE or the neuroretina)
    for les in lesions:
        _deep(img, an, les, ridges, rng)

    # --- disc: rim, brighter cup, blurred and hyperaemic when swollen
    disc = an.disc.copy()
    if "DISC_LEAK" in codes:
        disc = np.clip(ndimage.gaussian_filter(disc, 0.12 * px) * 1.15, 0, 1)
    ell = an.dist_mm(an.disc_mm) / an.disc_radius_mm
    cup = np.clip((look.cup_disc - ell) / 0.12 + 0.5, 0, 1) * disc
    rim_colour = DISC_RIM * (np.array([1.0, 0.85, 0.85]) if "DISC_LEAK" in codes else 1.0)
    _over(img, rim_colour, disc)
    _over(img, DISC_CUP, 0.9 * cup)

    # --- inner retina
    for les in lesions:
        _inner(img, an, les)
    _cotton_wool(img, an, lesions, rng)
    if not codes & {"CME", "POOL_SRD", "CSC_LEAK", "LEAK_DIFFUSE", "CNV_CLASSIC", "STAIN_SCAR"}:
        reflex = np.exp(-((r_fov / 0.06) ** 2)) + 0.35 * np.exp(-(((r_fov - 0.75) / 0.05) ** 2))
        img += (0.25 * look.foveal_reflex * reflex)[..., None].astype(np.float32)

    # --- vessels: veins under arteries; the central light reflex on the wider ones
    for maps, colour, shine in ((an.vein, VEIN, 0.18), (an.art, ARTERY, 0.35)):
        _over(img, colour, 1.15 * maps.weight)
        wide = np.clip(maps.radius * px - 0.8, 0, 1)
        reflex = np.exp(-((maps.u / 0.3) ** 2)) * wide * (maps.weight > 0.3)
        img += (shine * reflex)[..., None].astype(np.float32)
    for les in lesions:
        _vascular(img, les)

    return _camera(img, an, look, rng), {"look": look.as_dict(), "cotton_wool": "NPA" in codes}


def _choroidal_vessels(rng: np.random.Generator, size: int, px: float) -> np.ndarray:
    """(H, W) 0..1 ribbons of large choroidal vessels: the zero set of smooth noise, widened."""
    n = band_noise(rng, size, max(1.0, 0.3 * px))
    return np.exp(-((n / 0.45) ** 2)).astype(np.float32)


def _weight(les: Lesion) -> np.ndarray | None:
    """The strongest of a lesion's additive (dye-following) weights, 0..1: where its tissue is."""
    if les.additive:
        return np.clip(np.max([a.weight for a in les.additive], axis=0), 0, 1)
    return None


def _deep(img: np.ndarray, an: Anatomy, les: Lesion, ridges: np.ndarray, rng: np.random.Generator) -> None:
    code, px = les.code, an.to_px
    if code == "DRUSEN" and les.window is not None:
        w = les.window / 0.8
        if les.attrs.get("soft"):
            w = ndimage.gaussian_filter(w, max(0.5, 0.03 * px)) * 1.3
        _over(img, DRUSEN, 0.85 * w)
    elif code == "WINDOW_DEFECT" and les.window is not None:
        # geographic atrophy: sclera and large choroidal vessels seen through the missing RPE
        through = SCLERA * (1 - ridges[..., None]) + CHOROID_VESSEL * ridges[..., None]
        _over(img, through, 0.9 * les.window)
        _over(img, PIGMENT, 0.5 * ring_of(les.footprint, 1) * (band_noise(rng, an.size, 0.8) > 0.6))
    elif code == "LASER_SCARS":
        if les.window is not None:
            _over(img, SCLERA, 0.8 * les.window)
        if SUB in les.block:
            _over(img, PIGMENT, (1.0 - les.block[SUB]) / 0.7)
    elif code == "PIGMENT_BLOCK" and SUB in les.block:
        _over(img, PIGMENT, 0.9 * (1.0 - les.block[SUB]) / 0.7)
    elif code in ("POOL_SRD", "CSC_LEAK", "PINPOINT_LEAKS") and les.pools:
        # serous detachment: a translucent, slightly darker and yellower blister with a grey edge
        comp = np.any([p.compartment for p in les.pools], axis=0).astype(np.float32)
        comp = ndimage.gaussian_filter(comp, max(0.6, 0.05 * px))
        img *= (1.0 - 0.12 * comp[..., None] * np.array([0.6, 1.0, 1.3])).astype(np.float32)
        _over(img, OEDEMA, 0.35 * np.clip(1.0 - np.abs(comp - 0.5) / 0.2, 0, 1))
    elif code == "POOL_PED" and les.pools:
        comp = ndimage.gaussian_filter(les.pools[0].compartment.astype(np.float32), max(0.5, 0.02 * px))
        _over(img, np.array([0.88, 0.52, 0.22]), 0.45 * comp)
        _over(img, np.array([0.98, 0.80, 0.60]), 0.4 * np.clip(1.0 - np.abs(comp - 0.5) / 0.15, 0, 1))
    elif code == "CNV_CLASSIC":
        net = _weight(les)
        if net is not None:
            _over(img, CNV_MEMBRANE, ndimage.gaussian_filter(net / 0.9, max(0.6, 0.04 * px)) * 0.8)
        if SUB in les.block:  # rim of subretinal blood
            _over(img, SUBRETINAL_BLOOD, 0.9 * (1.0 - les.block[SUB]) / 0.6)
    elif code == "CNV_OCCULT":
        w = ndimage.gaussian_filter(les.footprint.astype(np.float32), max(0.6, 0.06 * px))
        _over(img, CNV_MEMBRANE * 1.1, 0.35 * w)
        edge = ring_of(les.footprint, max(1, int(0.06 * px))) & (band_noise(rng, an.size, 0.1 * px) > 0.8)
        _over(img, SUBRETINAL_BLOOD, 0.8 * edge)
    elif code == "STAIN_SCAR":
        tissue = _weight(les)
        if tissue is not None:
            _over(img, FIBROSIS, 0.85 * tissue)
        if SUB in les.block:
            _over(img, PIGMENT, 0.9 * (1.0 - les.block[SUB]) / 0.5)


def _inner(img: np.ndarray, an: Anatomy, les: Lesion) -> None:
    code, px = les.code, an.to_px
    if code == "HEME_BLOCK":
        for depth, tau in les.block.items():
            colour = {PRE: PRERETINAL_BLOOD, SUB: SUBRETINAL_BLOOD, INTRA: BLOOD}[depth]
            _over(img, colour, 1.4 * (1.0 - tau))
    elif code == "EXUDATE_BLOCK" and INTRA in les.block:
        w = (1.0 - les.block[INTRA]) / 0.35
        _over(img, EXUDATE, np.clip(1.6 * w - 0.2, 0, 1))  # hard exudates have sharp, waxy edges
    elif code == "MACROANEURYSM" and INTRA in les.block:
        ring = (1.0 - les.block[INTRA]) / 0.75
        _over(img, BLOOD, 0.8 * ring * (an.dist_mm(an.disc_mm) > 0))
    elif code in ("LEAK_DIFFUSE", "CAPILLARY_LEAK", "LEAK_FOCAL", "CME") and (les.leaks or les.pools):
        src = les.leaks[0].source if les.leaks else les.pools[0].compartment.astype(np.float32)
        thick = ndimage.gaussian_filter(np.clip(src, 0, 1), max(0.8, 0.15 * px))
        _over(img, OEDEMA, 0.2 * thick / max(float(thick.max()), 1e-6))
    elif code == "ART_DELAY":
        # arterial occlusion: the ischaemic inner retina whitens; the fovea (no inner retina) stays red
        quads = les.attrs.get("quadrants", [])
        territory = np.isin(position_quadrant(an), quads).astype(np.float32)
        spare = 1.0 - np.exp(-((np.hypot(an.x_mm, an.y_mm) / 0.25) ** 2))
        whitening = ndimage.gaussian_filter(territory, 0.3 * px) * spare * (an.disc < 0.5)
        whitening *= np.exp(-((np.hypot(an.x_mm, an.y_mm) / 4.5) ** 2))  # most where the retina is thickest
        _over(img, COTTON_WOOL * 0.92, 0.7 * whitening)
    elif code == "VESSEL_WALL_STAIN":
        cuff = _weight(les)
        if cuff is not None:
            _over(img, COTTON_WOOL, cuff)  # white sheathing along the inflamed vessels


def _vascular(img: np.ndarray, les: Lesion) -> None:
    """New or abnormal vessels and aneurysms: red, drawn with the vessel tree."""
    w = _weight(les)
    if w is None:
        return
    if les.code == "MA":
        _over(img, BLOOD * 0.9, 0.9 * np.clip(w, 0, 1))
    elif les.code == "MACROANEURYSM":
        _over(img, ARTERY * 0.85, np.clip(w / 1.3, 0, 1))
    elif les.code in ("NVD", "NVE", "IRMA", "COLLATERAL", "TELANGIECTASIA"):
        _over(img, ARTERY * 0.9, 0.75 * w)


def _cotton_wool(img: np.ndarray, an: Anatomy, lesions: list[Lesion], rng: np.random.Generator) -> None:
    """Fluffy white nerve-fibre-layer infarcts on the border of non-perfusion."""
    npa = [les.footprint for les in lesions if les.code == "NPA"]
    if not npa:
        return
    border = np.argwhere(ring_of(np.any(npa, axis=0), max(1, int(0.15 * an.to_px))) & an.fov)
    if not len(border):
        return
    spots = np.zeros((an.size, an.size), np.float32)
    for _ in range(int(rng.integers(2, 7))):
        i, j = border[rng.integers(len(border))]
        c = (np.array([j, i]) - an.fovea_px) / an.to_px
        d = c - an.disc_mm
        ang = float(np.arctan2(d[1], d[0]))  # elongated along the nerve fibres, radially from the disc
        a, b = rng.uniform(0.2, 0.4), rng.uniform(0.1, 0.18)
        dx, dy = an.x_mm - c[0], an.y_mm - c[1]
        u = (np.cos(ang) * dx + np.sin(ang) * dy) / a
        v = (-np.sin(ang) * dx + np.cos(ang) * dy) / b
        spots = np.maximum(spots, np.exp(-(u * u + v * v) * 2.0))
    fluff = spots * (0.8 + 0.2 * band_noise(rng, an.size, max(0.6, 0.03 * an.to_px)))
    _over(img, COTTON_WOOL, 0.85 * fluff)


def _camera(img: np.ndarray, an: Anatomy, look: PhotoLook, rng: np.random.Generator) -> np.ndarray:
    """Flash fall-off, white balance, media haze, defocus, sensor noise and the aperture -> uint8 RGB."""
    size = an.size
    jj, ii = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size))
    r = np.hypot(jj, ii) / 0.95
    light = (1.0 - look.vignetting * np.clip(r, 0, 1) ** 2.2).astype(np.float32)
    img = img * (light[..., None] * look.exposure * np.array(look.cast, np.float32))
    img += (look.haze * np.array([0.85, 0.75, 0.55]))[None, None].astype(np.float32)
    img += (look.rim_flare * np.exp(-(((1.0 - r) / 0.05) ** 2)))[..., None] * np.array([1.0, 0.75, 0.45])
    sigma = look.blur_px * size / 512.0
    img = np.stack([ndimage.gaussian_filter(img[..., c], sigma) for c in range(3)], axis=-1)
    img = img + look.noise * rng.standard_normal(img.shape).astype(np.float32)
    out = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    out[~an.fov] = 0
    return out
