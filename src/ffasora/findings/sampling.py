"""Random but plausible ``Findings``: a diagnosis, signs typical of it (design reference §3.2), attributes.

Used by the round-trip tests and by anyone who needs varied, valid findings without the full simulator case
sampler. Attributes are drawn from what each sign can carry clinically: a window defect is not "increasing",
an NPA is measured in disc areas, a telangiectasia in clock hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ffasora.findings.ontology import (
    COUNT_BUCKETS,
    DIAGNOSIS_CODES,
    EYES,
    FINDING_CODES,
    SECTORS,
    SEVERITIES,
    Diagnosis,
    Extent,
    Finding,
    Findings,
)

_MACULA = ("fovea", "parafovea", "perifovea", "macula", "posterior_pole")
_RETINA = ("posterior_pole", "arcade", "mid_periphery", "far_periphery", "macula")
_SECTORS = SECTORS


@dataclass(frozen=True)
class _Profile:
    zones: tuple[str, ...] = _RETINA
    sectors: bool = True
    onsets: tuple[str, ...] = ("early_AV", "late_AV")
    evolutions: tuple[str, ...] = ("stable",)
    counted: bool = False
    units: tuple[str, ...] = ()


_LEAKY = ("increasing",)
_PROFILES: dict[str, _Profile] = {
    "ART_DELAY": _Profile(zones=(), sectors=True, onsets=("arterial",), evolutions=()),
    "VEN_DELAY": _Profile(zones=(), sectors=True, onsets=("early_AV", "late_AV", "venous"), evolutions=()),
    "CHOR_FILL_DEFECT": _Profile(zones=_MACULA, onsets=("choroidal",), evolutions=("fading",), units=("DA",)),
    "MA": _Profile(
        onsets=("arterial", "early_AV"), evolutions=("stable", "fading", "increasing"), counted=True
    ),
    "HEME_BLOCK": _Profile(
        zones=(*_RETINA, "peripapillary"), onsets=("choroidal", "arterial", "early_AV"), counted=True
    ),
    "EXUDATE_BLOCK": _Profile(zones=_MACULA, onsets=("choroidal", "early_AV"), counted=True),
    "PIGMENT_BLOCK": _Profile(zones=_MACULA, onsets=("choroidal", "early_AV"), counted=True),
    "NPA": _Profile(onsets=("early_AV", "late_AV"), counted=True, units=("DA",)),
    "FAZ_ENLARGED": _Profile(zones=("fovea",), sectors=False, onsets=("early_AV", "late_AV")),
    "IRMA": _Profile(onsets=("early_AV", "late_AV"), counted=True),
    "VENOUS_BEADING": _Profile(
        zones=("arcade", "mid_periphery", "posterior_pole"), onsets=("late_AV", "venous")
    ),
    "VEIN_DILATED_TORTUOUS": _Profile(zones=("arcade", "posterior_pole"), onsets=("late_AV", "venous")),
    "COLLATERAL": _Profile(
        zones=("disc", "arcade", "posterior_pole"), onsets=("early_AV", "late_AV"), counted=True
    ),
    "NVD": _Profile(
        zones=("disc", "peripapillary"), sectors=False, onsets=("arterial", "early_AV"), evolutions=_LEAKY
    ),
    "NVE": _Profile(
        zones=("arcade", "mid_periphery", "far_periphery"),
        onsets=("arterial", "early_AV"),
        evolutions=_LEAKY,
        counted=True,
        units=("DA",),
    ),
    "TELANGIECTASIA": _Profile(
        zones=("mid_periphery", "far_periphery", "parafovea"),
        onsets=("arterial", "early_AV"),
        evolutions=_LEAKY,
        units=("clock_hours",),
    ),
    "MACROANEURYSM": _Profile(
        zones=("arcade", "posterior_pole"), onsets=("arterial",), evolutions=_LEAKY, counted=True
    ),
    "LEAK_FOCAL": _Profile(
        zones=_MACULA, onsets=("early_AV", "late_AV", "mid"), evolutions=_LEAKY, counted=True
    ),
    "LEAK_DIFFUSE": _Profile(zones=_MACULA, onsets=("mid", "late"), evolutions=_LEAKY, units=("DA",)),
    "CME": _Profile(zones=("macula", "fovea"), sectors=False, onsets=("mid", "late"), evolutions=_LEAKY),
    "CSC_LEAK": _Profile(zones=_MACULA, onsets=("early_AV", "late_AV"), evolutions=_LEAKY, counted=True),
    "POOL_SRD": _Profile(zones=_MACULA, onsets=("mid", "late"), evolutions=_LEAKY, units=("DD",)),
    "POOL_PED": _Profile(
        zones=_MACULA, onsets=("choroidal", "early_AV"), evolutions=("stable", "increasing"), units=("DD",)
    ),
    "CNV_CLASSIC": _Profile(
        zones=("fovea", "parafovea", "macula", "peripapillary"),
        onsets=("choroidal", "arterial"),
        evolutions=_LEAKY,
        units=("DD",),
    ),
    "CNV_OCCULT": _Profile(zones=_MACULA, onsets=("mid", "late"), evolutions=_LEAKY, units=("DD",)),
    "VESSEL_WALL_STAIN": _Profile(
        zones=("arcade", "mid_periphery", "posterior_pole"),
        onsets=("venous", "mid", "late"),
        evolutions=_LEAKY,
        units=("clock_hours",),
    ),
    "CAPILLARY_LEAK": _Profile(
        zones=("posterior_pole", "mid_periphery", "macula"), onsets=("mid", "late"), evolutions=_LEAKY
    ),
    "PINPOINT_LEAKS": _Profile(
        zones=("posterior_pole", "macula"), onsets=("early_AV", "late_AV"), evolutions=_LEAKY
    ),
    "DISC_LEAK": _Profile(
        zones=("disc", "peripapillary"), sectors=False, onsets=("arterial", "mid", "late"), evolutions=_LEAKY
    ),
    "STAIN_SCAR": _Profile(
        zones=_MACULA, onsets=("mid", "late"), evolutions=("increasing", "stable"), counted=True
    ),
    "DRUSEN": _Profile(
        zones=_MACULA, onsets=("choroidal", "early_AV", "late"), evolutions=("fading", "stable"), counted=True
    ),
    "WINDOW_DEFECT": _Profile(
        zones=(*_MACULA, "peripapillary"),
        onsets=("choroidal", "early_AV"),
        evolutions=("tracks_background", "fading"),
        counted=True,
        units=("DA",),
    ),
    "LASER_SCARS": _Profile(
        zones=("mid_periphery", "macula", "arcade"),
        onsets=("choroidal", "early_AV"),
        evolutions=("tracks_background", "stable"),
        counted=True,
    ),
}

# Diagnosis -> the signs that typically go with it (§3.2, most important first).
_SIGNS: dict[str, tuple[str, ...]] = {
    "DR": (
        "MA",
        "HEME_BLOCK",
        "NPA",
        "IRMA",
        "VENOUS_BEADING",
        "NVE",
        "NVD",
        "EXUDATE_BLOCK",
        "LASER_SCARS",
        "FAZ_ENLARGED",
    ),
    "DME": ("LEAK_FOCAL", "LEAK_DIFFUSE", "CME", "MA"),
    "BRVO": (
        "VEN_DELAY",
        "HEME_BLOCK",
        "VEIN_DILATED_TORTUOUS",
        "NPA",
        "VESSEL_WALL_STAIN",
        "CME",
        "COLLATERAL",
    ),
    "CRVO": ("VEN_DELAY", "HEME_BLOCK", "VEIN_DILATED_TORTUOUS", "DISC_LEAK", "CME", "NPA"),
    "CSC": ("CSC_LEAK", "POOL_SRD", "POOL_PED", "WINDOW_DEFECT"),
    "nAMD": ("CNV_CLASSIC", "CNV_OCCULT", "DRUSEN", "HEME_BLOCK", "STAIN_SCAR", "POOL_PED"),
    "dryAMD": ("DRUSEN", "WINDOW_DEFECT", "PIGMENT_BLOCK"),
    "myopicCNV": ("CNV_CLASSIC", "WINDOW_DEFECT"),
    "uveitis": (
        "VESSEL_WALL_STAIN",
        "DISC_LEAK",
        "CAPILLARY_LEAK",
        "CME",
        "PINPOINT_LEAKS",
        "POOL_SRD",
        "NPA",
    ),
    "RAO": ("ART_DELAY", "CHOR_FILL_DEFECT"),
    "Coats": ("TELANGIECTASIA", "EXUDATE_BLOCK", "NPA", "LEAK_FOCAL", "MACROANEURYSM"),
}
_COMPANION = {"DR": "DME", "BRVO": "DME"}
_EXTENT_VALUES = {
    "DA": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0),
    "DD": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0),
    "clock_hours": (1.0, 2.0, 3.0, 4.0, 6.0),
    "px": (12.0, 24.0, 40.0, 64.0, 96.0),
}


def _choice(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def random_finding(code: str, rng: np.random.Generator) -> Finding:
    """One sign with attributes drawn from what the sign can carry (each attribute present about 60 %)."""
    prof = _PROFILES[code]
    location: list[str] = []
    if prof.sectors and rng.random() < 0.5:
        location += list(rng.choice(_SECTORS, size=int(rng.integers(1, 3)), replace=False))
    if prof.zones and rng.random() < 0.7:
        location += list(
            rng.choice(prof.zones, size=int(rng.integers(1, min(2, len(prof.zones)) + 1)), replace=False)
        )
    subtypes = FINDING_CODES[code].subtypes
    unit = None
    if prof.units:
        unit = "px" if rng.random() < 0.05 else _choice(rng, prof.units)
    return Finding(
        code,
        location=tuple(str(x) for x in location),
        onset_phase=_choice(rng, prof.onsets) if rng.random() < 0.8 else None,
        evolution=_choice(rng, prof.evolutions) if prof.evolutions and rng.random() < 0.6 else None,
        extent=Extent(float(rng.choice(_EXTENT_VALUES[unit])), unit) if unit and rng.random() < 0.6 else None,
        count_bucket=_choice(rng, COUNT_BUCKETS) if prof.counted and rng.random() < 0.6 else None,
        severity=_choice(rng, SEVERITIES) if rng.random() < 0.15 else None,
        certainty="suspected" if rng.random() < 0.1 else "definite",
        subtype=_choice(rng, subtypes) if subtypes and rng.random() < 0.7 else None,
    )


def random_findings(rng: np.random.Generator) -> Findings:
    """A random plausible report: eye, 1-6 signs around a diagnosis, 0-3 negatives, the diagnoses."""
    eye = _choice(rng, EYES)
    arm = float(round(rng.uniform(8.0, 25.0) * 2) / 2) if rng.random() < 0.7 else None
    if rng.random() < 0.07:
        absent = rng.choice(sorted(_PROFILES), size=int(rng.integers(0, 3)), replace=False)
        dx = (Diagnosis("normal"),) if rng.random() < 0.8 else ()
        return Findings(eye, (Finding("NORMAL"),), frozenset(str(c) for c in absent), dx, arm)
    primary = _choice(rng, sorted(_SIGNS))
    diagnoses = [_random_diagnosis(primary, rng)]
    if primary in _COMPANION and rng.random() < 0.4:
        diagnoses.append(_random_diagnosis(_COMPANION[primary], rng))
    pool = [c for d in diagnoses for c in _SIGNS[d.code]]
    others = sorted(set(_PROFILES) - set(pool))
    n = int(rng.integers(1, 7))
    codes: list[str] = []
    while len(codes) < n:
        source = pool if rng.random() < 0.8 else others
        code = _choice(rng, source)
        if code not in codes:
            codes.append(code)
        if len(set(pool) | set(codes)) == len(codes):
            break
    rest = sorted(set(_PROFILES) - set(codes))
    absent = rng.choice(rest, size=int(rng.integers(0, 4)), replace=False)
    present = tuple(random_finding(c, rng) for c in codes)
    kept = tuple(diagnoses) if rng.random() < 0.85 else ()
    return Findings(eye, present, frozenset(str(c) for c in absent), kept, arm)


def _random_diagnosis(code: str, rng: np.random.Generator) -> Diagnosis:
    grades = DIAGNOSIS_CODES[code].grades
    return Diagnosis(code, _choice(rng, grades) if grades and rng.random() < 0.8 else None)
