"""Findings measured from what was rendered, so a report never contradicts its pixels (reference §6.6 step 7).

A planned lesion is reported only if enough of it lies inside the field of view; its location, extent,
count, onset phase and evolution are read from its mask and kinetic layers in the canonical right-eye frame
(anatomical terms do not depend on the eye; the mirror for a left eye is applied to pixels only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ffasora.findings import Diagnosis, Extent, Finding, Findings
from ffasora.simulate.anatomy import DD_MM, Anatomy
from ffasora.simulate.kinetics import Timing, phase_of
from ffasora.simulate.lesions import Lesion, dd_area
from ffasora.simulate.vessels import QUADRANTS

COUNTED = {"MA", "HEME_BLOCK", "DRUSEN", "LEAK_FOCAL", "LASER_SCARS", "PINPOINT_LEAKS", "PIGMENT_BLOCK"}
AREA_DA = {
    "NPA",
    "LEAK_DIFFUSE",
    "WINDOW_DEFECT",
    "CNV_CLASSIC",
    "CNV_OCCULT",
    "STAIN_SCAR",
    "CAPILLARY_LEAK",
}
SIZE_DD = {"POOL_SRD", "POOL_PED", "NVE", "NVD"}
NEGATIVE_POOL = ("NVD", "NVE", "DISC_LEAK", "LEAK_FOCAL", "NPA", "CNV_CLASSIC", "CME", "POOL_SRD", "MA")


def min_pixels(size: int) -> int:
    """Smallest visible lesion in px: 2 px, or a 50 µm dot's area at large sizes."""
    return max(2, int(round((size / 512) ** 2 * 3)))


def visible(an: Anatomy, les: Lesion) -> np.ndarray:
    """The part of a lesion's footprint inside the field of view."""
    return les.footprint & an.fov


def locate(an: Anatomy, mask: np.ndarray) -> tuple[str, ...]:
    """Zone and the sector or sectors that hold the lesion (§4.3 terms, canonical OD frame)."""
    x, y = an.x_mm[mask], an.y_mm[mask]
    cx, cy = float(x.mean()), float(y.mean())
    d_fov = float(np.hypot(cx, cy))
    if float(np.hypot(x.std(), y.std())) > 1.5:  # scattered: the zone of its mean eccentricity
        zone = "posterior_pole" if float(np.hypot(x, y).mean()) < 4.2 else "mid_periphery"
        return (zone, *_sectors(an, x, y))
    d_disc = float(np.hypot(cx - an.disc_mm[0], cy - an.disc_mm[1]))
    if d_disc < an.disc_radius_mm:
        return ("disc",)
    if d_disc < an.disc_radius_mm + DD_MM:
        zone = "peripapillary"
    elif d_fov <= 0.5:
        return ("fovea",)
    elif d_fov <= 1.5:
        return ("parafovea",)
    elif d_fov <= 2.5:
        zone = "macula"
    elif d_fov <= 4.2:
        zone = "posterior_pole"
    else:
        zone = "mid_periphery"
    return (zone, *_sectors(an, x, y))


# indices into QUADRANTS: two neighbouring quadrants read as one half of the fundus; two opposite ones are named both
HALVES = {(0, 1): "temporal", (2, 3): "nasal", (0, 2): "superior", (1, 3): "inferior"}


def _sectors(an: Anatomy, x: np.ndarray, y: np.ndarray) -> tuple[str, ...]:
    """The quadrant holding 70 % of the lesion, or the two holding 80 % (each at least 20 %), as a reader
    would localise it ("in the temporal mid-periphery"); nothing for a lesion spread over three or four."""
    nasal = x > an.disc_mm[0]
    superior = np.where(nasal, y < an.disc_mm[1], y < 0.0)
    share = np.bincount(np.where(nasal, 2, 0) + np.where(superior, 0, 1), minlength=4) / len(x)
    first, second = (int(q) for q in np.argsort(share)[::-1][:2])
    if share[first] >= 0.7:
        return (QUADRANTS[first],)
    if share[first] + share[second] >= 0.8 and share[second] >= 0.2:
        pair = (min(first, second), max(first, second))
        return (HALVES[pair],) if pair in HALVES else (QUADRANTS[pair[0]], QUADRANTS[pair[1]])
    return ()


def _bucket(n: int) -> str:
    return "single" if n <= 1 else "few" if n <= 5 else "multiple" if n <= 20 else "numerous"


def _evolution(les: Lesion) -> str | None:
    if les.kinetic_class == "DF":
        return None
    if les.leaks or les.pools or any(a.curve == "stain" for a in les.additive):
        return "increasing"
    if les.window is not None:
        return "fading"
    return "stable"


def describe(an: Anatomy, timing: Timing, les: Lesion, mask: np.ndarray) -> Finding:
    """The report attributes of one visible lesion."""
    area_mm2 = float(mask.sum()) / an.to_px**2
    extent = count = severity = None
    if les.code in AREA_DA:
        extent = Extent(round(max(area_mm2 / dd_area(), 0.1), 1), "DA")
    elif les.code in SIZE_DD:
        extent = Extent(round(max(2 * float(np.sqrt(area_mm2 / np.pi)) / DD_MM, 0.1), 1), "DD")
    if les.code in COUNTED:
        count = _bucket(int(ndimage.label(mask)[1]))
    if les.code == "NPA" and extent is not None:
        severity = "mild" if extent.value < 5 else "moderate" if extent.value < 10 else "severe"
    if les.code in ("VEN_DELAY", "ART_DELAY"):
        d = float(les.attrs.get("delay_s", 0.0))
        severity = "mild" if d < 8 else "moderate" if d < 15 else "severe"
    location = locate(an, mask) if les.code != "FAZ_ENLARGED" else ("fovea",)
    if "quadrants" in les.attrs:  # a vessel territory: named by its sector when it is one quadrant
        quads = [q for q in les.attrs["quadrants"] if q < len(QUADRANTS)]
        location = (QUADRANTS[quads[0]],) if len(quads) == 1 else ()
    return Finding(
        code=les.code,
        location=location,
        onset_phase=phase_of(les.onset_s, timing.arm_retina_s) if les.kinetic_class != "BL" else None,
        evolution=_evolution(les),
        extent=extent,
        count_bucket=count,
        severity=severity,
        subtype=les.subtype,
    )


def measure_findings(
    an: Anatomy,
    timing: Timing,
    lesions: list[Lesion],
    diagnoses: list[Diagnosis],
    eye: str,
    rng: np.random.Generator,
) -> tuple[Findings, list[bool]]:
    """Findings of the rendered case and, per lesion, whether it was visible (and so reported)."""
    shown = [bool(visible(an, les).sum() >= min_pixels(an.size)) for les in lesions]
    present = tuple(
        describe(an, timing, les, visible(an, les)) for les, ok in zip(lesions, shown, strict=True) if ok
    )
    codes = {f.code for f in present}
    if not present:
        present = (Finding("NORMAL"),)
    candidates = [c for c in NEGATIVE_POOL if c not in codes]
    k = int(rng.integers(1, 4)) if candidates else 0
    absent = (
        frozenset(str(c) for c in rng.choice(candidates, size=min(k, len(candidates)), replace=False))
        if k
        else frozenset()
    )
    delays = [
        float(les.attrs.get("delay_s", 0.0))
        for les, ok in zip(lesions, shown, strict=True)
        if ok and les.code == "ART_DELAY"
    ]
    arm = timing.arm_retina_s + (max(delays) if delays else 0.0)
    return Findings(
        eye=eye, present=present, absent=absent, diagnoses=tuple(diagnoses), arm_retina_s=round(arm, 1)
    ), shown


def lesion_meta(les: Lesion) -> dict[str, Any]:
    """JSON-ready kinetic constants of a lesion (meta.json ``lesions``)."""
    return {
        "code": les.code,
        "kinetic_class": les.kinetic_class,
        "onset_s": round(float(les.onset_s), 3),
        "subtype": les.subtype,
        "leaks": [
            {
                "onset_s": round(lk.onset_s, 3),
                "amp": lk.amp,
                "rate": lk.rate,
                "sigma0_mm": lk.sigma0_mm,
                "D_mm2_per_min": round(lk.d_mm2_min, 4),
                "depth": lk.depth,
            }
            for lk in les.leaks
        ],
        "pools": [
            {
                "amp": p.amp,
                "rate": p.rate,
                "depth": p.depth,
                "front_start_s": round(float(p.front_s.min()), 3),
            }
            for p in les.pools
        ],
        "blocks": sorted(les.block),
        "window": les.window is not None,
        "delay": None
        if les.delay is None
        else {
            "art": {str(k): round(v, 3) for k, v in les.delay.art.items()},
            "vein": {str(k): round(v, 3) for k, v in les.delay.vein.items()},
            "choroid": les.delay.lobules is not None,
        },
    }
