"""Case planning: diagnosis from the cohort mix, then signs from the disease -> sign table (reference §3.2-§3.3).

``plan_case`` returns a ``CasePlan``: the diagnoses, the signs to insert (finding code + parameters), the
vessel edits the signs need while the trees grow, and timing changes. Sign probabilities and the mix are the
engineering defaults of the design reference; the consistency rules of §6.6 are enforced here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ffasora.findings import DIAGNOSIS_CODES, Diagnosis
from ffasora.simulate.vessels import QUADRANTS, VesselEdits

# "China tertiary FFA" default mix per eye (§3.3); "other" = disc oedema, macroaneurysm, hypertensive
# choroidopathy, post-laser (no diagnosis code of the ontology fits, so these cases carry none)
MIX = {
    "DR": 0.30,
    "BRVO": 0.13,
    "CRVO": 0.05,
    "CSC": 0.15,
    "nAMD": 0.08,
    "myopicCNV": 0.02,
    "uveitis": 0.07,
    "normal": 0.08,
    "dryAMD": 0.03,
    "RAO": 0.02,
    "Coats": 0.01,
    "other": 0.06,
}
# signs that others depend on come first (NVE/IRMA/MA use the NPA border; POOL_SRD the CSC detachment)
ORDER = ("NPA", "FAZ_ENLARGED", "CSC_LEAK", "POOL_SRD")


@dataclass
class CasePlan:
    diagnoses: list[Diagnosis]
    signs: list[tuple[str, dict[str, Any]]]
    edits: VesselEdits = field(default_factory=VesselEdits)
    faz_scale: float = 1.0
    arm_delay_s: float = 0.0

    def codes(self) -> list[str]:
        return [c for c, _ in self.signs]


def parse_diagnosis(text: str) -> tuple[str, str | None]:
    """``"DR"``, ``"DR:PDR"`` or ``"DR(PDR)"`` -> (code, grade); ValueError for unknown codes or grades."""
    code, _, grade = text.replace("(", ":").rstrip(")").partition(":")
    if code != "other":
        Diagnosis(code, grade or None)  # validates against the ontology
    return code, grade or None


class _Planner:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.signs: dict[str, dict[str, Any]] = {}

    def p(self, prob: float) -> bool:
        return bool(self.rng.random() < prob)

    def add(self, code: str, **params: Any) -> None:
        self.signs.setdefault(code, {}).update(params)

    def maybe(self, prob: float, code: str, **params: Any) -> None:
        if self.p(prob):
            self.add(code, **params)

    def grade(self, code: str, weights: tuple[float, ...]) -> str:
        grades = DIAGNOSIS_CODES[code].grades
        return str(self.rng.choice(grades, p=np.asarray(weights) / sum(weights)))


def _dme(pl: _Planner, grade: str | None = None) -> Diagnosis:
    grade = grade or pl.grade("DME", (0.4, 0.35, 0.25))
    pl.add("LEAK_FOCAL" if grade == "focal" else "LEAK_DIFFUSE")
    if grade == "cystoid":
        pl.add("CME")
    pl.maybe(0.4, "EXUDATE_BLOCK")
    return Diagnosis("DME", grade)


def _dr(pl: _Planner, grade: str | None, out: list[Diagnosis]) -> None:
    grade = grade or pl.grade("DR", (0.10, 0.25, 0.25, 0.40))
    out.append(Diagnosis("DR", grade))
    four = list(QUADRANTS)
    if grade == "mild_NPDR":
        pl.add("MA", count_bucket="few")
        pl.maybe(0.5, "HEME_BLOCK", subtype="blot", count_bucket="few")
        pl.maybe(0.2, "LEAK_FOCAL", count_bucket="single")
        return
    if grade == "moderate_NPDR":
        pl.add("MA", count_bucket="multiple")
        pl.maybe(0.8, "HEME_BLOCK", subtype="blot", count_bucket="few")
        pl.maybe(0.4, "NPA", area_da=pl.rng.uniform(1, 4))
        pl.maybe(0.3, "EXUDATE_BLOCK")
    else:
        pl.add("MA", count_bucket="numerous")
        pl.add("NPA", area_da=pl.rng.uniform(5, 20), sectors=tuple(pl.rng.choice(four, 2, replace=False)))
        pl.maybe(0.9, "HEME_BLOCK", subtype="blot", count_bucket="multiple", sectors=tuple(four))
        pl.maybe(0.7, "IRMA")
        pl.maybe(0.5, "VENOUS_BEADING", sectors=tuple(four[:2]))
        pl.maybe(0.3, "FAZ_ENLARGED")
        if "HEME_BLOCK" not in pl.signs and "VENOUS_BEADING" not in pl.signs:
            pl.add("IRMA")  # 4-2-1 surrogate (§6.6)
    if grade == "PDR":
        pl.maybe(0.8, "NVE")
        pl.maybe(0.4, "NVD")
        if "NVE" not in pl.signs and "NVD" not in pl.signs:
            pl.add("NVE")  # PDR => NVD or NVE (§6.6)
        pl.maybe(0.2, "HEME_BLOCK", subtype="preretinal")
        pl.maybe(0.4, "LASER_SCARS", subtype="PRP")
    if grade in ("severe_NPDR", "PDR") and pl.p(0.5) or grade == "moderate_NPDR" and pl.p(0.4):
        out.append(_dme(pl))


def _rvo(pl: _Planner, code: str, grade: str | None, out: list[Diagnosis]) -> None:
    grade = grade or ("ischemic" if pl.p(0.2) else "non_ischemic")
    out.append(Diagnosis(code, grade))
    if code == "BRVO":
        sector = "superotemporal" if pl.p(0.63) else "inferotemporal"
        sectors: tuple[str, ...] = (sector,)
        pl.add("VEN_DELAY", sectors=sectors, delay_s=pl.rng.uniform(6, 15))
        pl.add("HEME_BLOCK", subtype="flame", count_bucket="multiple", sectors=sectors)
        pl.add("VEIN_DILATED_TORTUOUS", sectors=sectors)
        pl.maybe(0.6, "VESSEL_WALL_STAIN")
        if grade == "ischemic" or pl.p(0.3):
            pl.add(
                "NPA",
                area_da=pl.rng.uniform(6, 15) if grade == "ischemic" else pl.rng.uniform(1, 4),
                sectors=sectors,
            )
        pl.maybe(0.6, "CME")
        pl.maybe(0.3, "COLLATERAL")
        pl.maybe(0.1, "NVE")
    else:
        sectors = tuple(QUADRANTS)
        pl.add("VEN_DELAY", sectors=sectors, delay_s=pl.rng.uniform(8, 20))
        pl.add("VEIN_DILATED_TORTUOUS", sectors=sectors)
        pl.maybe(0.9, "HEME_BLOCK", subtype="flame", count_bucket="numerous", sectors=sectors)
        pl.maybe(0.7, "DISC_LEAK")
        pl.maybe(0.7, "CME")
        if grade == "ischemic":
            pl.add("NPA", area_da=pl.rng.uniform(10, 25), sectors=tuple(QUADRANTS[:2]))
            pl.maybe(0.3, "NVD")


def _macular(pl: _Planner, code: str, grade: str | None, out: list[Diagnosis]) -> None:
    if code == "CSC":
        grade = grade or ("acute" if pl.p(0.7) else "chronic")
        out.append(Diagnosis("CSC", grade))
        if pl.p(0.8):
            pl.add("CSC_LEAK", subtype="ink_blot" if pl.p(0.9) else "smokestack")
        pl.maybe(0.9, "POOL_SRD")
        pl.maybe(0.3, "POOL_PED")
        if grade == "chronic":
            pl.add("WINDOW_DEFECT", pattern="tract")
            pl.maybe(0.4, "PIGMENT_BLOCK")
        if "CSC_LEAK" not in pl.signs and "POOL_SRD" not in pl.signs:
            pl.add("POOL_SRD")
    elif code in ("nAMD", "myopicCNV"):
        if code == "nAMD":
            grade = grade or pl.grade("nAMD", (0.36, 0.64, 0.2))
            out.append(Diagnosis("nAMD", grade))
            pl.maybe(0.7, "DRUSEN")
        else:
            grade = "classic"
            out.append(Diagnosis("myopicCNV"))
            pl.add("WINDOW_DEFECT")
        if grade in ("classic", "mixed"):
            pl.add("CNV_CLASSIC")
        if grade in ("occult", "mixed"):
            pl.add("CNV_OCCULT", subtype="fibrovascular_PED" if pl.p(0.4) else "late_leakage")
        pl.maybe(0.4, "HEME_BLOCK", subtype="subretinal", count_bucket="single")
        pl.maybe(0.2, "STAIN_SCAR")
        pl.maybe(0.2, "POOL_PED")
    else:  # dry AMD
        grade = grade or ("GA" if pl.p(0.4) else "drusen")
        out.append(Diagnosis("dryAMD", grade))
        pl.add("DRUSEN")
        if grade == "GA":
            pl.add("WINDOW_DEFECT")
        pl.maybe(0.3, "PIGMENT_BLOCK")


def _other_diseases(pl: _Planner, code: str, grade: str | None, out: list[Diagnosis]) -> None:
    if code == "uveitis":
        grade = grade or pl.grade("uveitis", (0.5, 0.3, 0.2))
        out.append(Diagnosis("uveitis", grade))
        pl.maybe(0.6, "DISC_LEAK")
        pl.maybe(0.7, "VESSEL_WALL_STAIN")
        pl.maybe(0.5, "CAPILLARY_LEAK")
        pl.maybe(0.4, "CME")
        pl.maybe(0.2, "NPA", area_da=pl.rng.uniform(2, 8))
        pl.maybe(0.1, "NVE")
        if grade == "VKH" or pl.p(0.1):
            pl.add("PINPOINT_LEAKS")
        if not pl.signs:
            pl.add("VESSEL_WALL_STAIN")
    elif code == "RAO":
        grade = grade or ("central" if pl.p(0.64) else "branch")
        out.append(Diagnosis("RAO", grade))
        sectors = tuple(QUADRANTS) if grade == "central" else (str(pl.rng.choice(QUADRANTS[:2])),)
        pl.add("ART_DELAY", sectors=sectors, delay_s=pl.rng.uniform(8, 25))
        pl.maybe(0.2, "CHOR_FILL_DEFECT")
    elif code == "Coats":
        out.append(Diagnosis("Coats", grade or pl.grade("Coats", (0.6, 0.4))))
        sector = "temporal_inferior" if pl.p(0.7) else "superotemporal"
        pl.add("TELANGIECTASIA", sector="inferotemporal" if sector == "temporal_inferior" else sector)
        pl.maybe(0.8, "EXUDATE_BLOCK")
        pl.add("LEAK_FOCAL", count_bucket="few")
        pl.maybe(0.8, "NPA", area_da=pl.rng.uniform(2, 6), sectors=("inferotemporal",))
    elif code == "other":
        kind = pl.rng.choice(["disc_oedema", "macroaneurysm", "hypertensive", "post_laser"])
        {
            "disc_oedema": lambda: pl.add("DISC_LEAK"),
            "macroaneurysm": lambda: pl.add("MACROANEURYSM"),
            "hypertensive": lambda: pl.add("CHOR_FILL_DEFECT"),
            "post_laser": lambda: pl.add("LASER_SCARS", subtype=str(pl.rng.choice(["grid", "focal", "PRP"]))),
        }[str(kind)]()


def parse_mix(text: str) -> dict[str, float]:
    """``"BRVO=0.4,CRVO=0.4,normal=0.2"`` -> a cohort mix for ``plan_case``; ValueError naming the bad part.

    Keys are what ``parse_diagnosis`` takes (a code, ``code:grade`` or ``other``); weights are relative (they
    need not sum to 1) and a key may appear once."""
    mix: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{part!r}: expected DIAGNOSIS=WEIGHT, e.g. BRVO=0.4")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"{part!r}: the weight {value.strip()!r} is not a number") from None
        if not np.isfinite(weight) or weight <= 0:
            raise ValueError(f"{part!r}: the weight must be a finite number > 0")
        parse_diagnosis(name)
        if name in mix:
            raise ValueError(f"{name!r} appears twice")
        mix[name] = weight
    return mix


def plan_case(
    rng: np.random.Generator,
    diagnosis: str | None = None,
    signs: tuple[str, ...] = (),
    mix: Mapping[str, float] | None = None,
) -> CasePlan:
    """Sample (or take) a diagnosis and plan its signs; ``signs`` forces extra finding codes (single-lesion
    kinetics cases, tests). ``diagnosis`` is a code of the ontology, ``"code:grade"``, or ``"other"``; None
    draws one from ``mix`` (relative weights, default ``MIX``, the design reference's clinic cohort)."""
    if diagnosis is None:
        weights = dict(mix or MIX)
        names = list(weights)
        p = np.array([weights[n] for n in names], dtype=np.float64)
        diagnosis = str(rng.choice(names, p=p / p.sum()))
    code, grade = parse_diagnosis(diagnosis)
    pl = _Planner(rng)
    dx: list[Diagnosis] = []
    if code == "DR":
        _dr(pl, grade, dx)
    elif code == "DME":
        _dr(pl, "moderate_NPDR", dx)
        if not any(d.code == "DME" for d in dx):
            dx.append(_dme(pl, grade))
    elif code in ("BRVO", "CRVO"):
        _rvo(pl, code, grade, dx)
    elif code in ("CSC", "nAMD", "myopicCNV", "dryAMD"):
        _macular(pl, code, grade, dx)
    elif code == "normal":
        dx.append(Diagnosis("normal"))
    else:
        _other_diseases(pl, code, grade, dx)
    for s in signs:
        pl.add(s)
    if code == "RAO":  # RAO => no late leakage (§6.6)
        for c in ("LEAK_FOCAL", "LEAK_DIFFUSE", "CAPILLARY_LEAK", "DISC_LEAK"):
            if c not in signs:
                pl.signs.pop(c, None)
    ordered = sorted(pl.signs.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER))
    return CasePlan(dx, ordered, _edits(pl.signs, rng), 2.0 if "FAZ_ENLARGED" in pl.signs else 1.0)


def _edits(signs: dict[str, dict[str, Any]], rng: np.random.Generator) -> VesselEdits:
    def quads(code: str, default: tuple[str, ...]) -> list[int]:
        return [QUADRANTS.index(s) for s in signs.get(code, {}).get("sectors", default)]

    dil = (
        {q: float(rng.uniform(1.3, 1.7)) for q in quads("VEIN_DILATED_TORTUOUS", QUADRANTS)}
        if "VEIN_DILATED_TORTUOUS" in signs
        else {}
    )
    tort = dict.fromkeys(dil, 0.6)
    beading = frozenset(quads("VENOUS_BEADING", QUADRANTS[:2])) if "VENOUS_BEADING" in signs else frozenset()
    cilio = bool(rng.random() < 0.2)
    return VesselEdits(vein_dilation=dil, vein_tortuosity=tort, beading=beading, cilioretinal=cilio)
