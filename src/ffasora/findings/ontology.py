"""The controlled vocabulary every part of ffasora shares: finding codes, their attributes, and diagnoses.

The 34 finding codes follow the FFA findings ontology of the design reference (§4.5). A ``Finding`` is one
sign in one eye with the attributes a report states about it; ``Findings`` is everything one report (one eye)
says: the signs present, the signs explicitly stated absent, the diagnoses and the circulation times.

Kinetic classes (how a sign behaves over the angiogram):
  IV intravascular, LK leakage, PL pooling, ST staining, WD window defect, BL blockage, NP non-perfusion,
  DF delayed / defective filling.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

EYES = ("OD", "OS")
PHASES = ("choroidal", "arterial", "early_AV", "late_AV", "venous", "mid", "late")
EVOLUTIONS = ("increasing", "stable", "fading", "tracks_background")
COUNT_BUCKETS = ("single", "few", "multiple", "numerous")
SEVERITIES = ("mild", "moderate", "severe")
CERTAINTIES = ("definite", "suspected")
EXTENT_UNITS = ("DA", "DD", "clock_hours", "px")
ZONES = (
    "fovea",
    "parafovea",
    "perifovea",
    "macula",
    "peripapillary",
    "disc",
    "posterior_pole",
    "arcade",
    "mid_periphery",
    "far_periphery",
)
SECTORS = (
    "superotemporal",
    "inferotemporal",
    "superonasal",
    "inferonasal",
    "superior",
    "inferior",
    "temporal",
    "nasal",
)
LOCATIONS = ZONES + SECTORS
KINETIC_CLASSES = ("IV", "LK", "PL", "ST", "WD", "BL", "NP", "DF")


@dataclass(frozen=True)
class FindingCode:
    """One entry of the ontology: a code, its canonical names and the kinetic classes it belongs to."""

    code: str
    en: str
    zh: str
    kinetic_classes: tuple[str, ...]
    subtypes: tuple[str, ...] = ()


def _code(code: str, en: str, zh: str, classes: str, subtypes: tuple[str, ...] = ()) -> FindingCode:
    return FindingCode(code, en, zh, tuple(classes.split("+")) if classes else (), subtypes)


FINDING_CODES: dict[str, FindingCode] = {
    c.code: c
    for c in (
        _code("ART_DELAY", "delayed arterial filling", "动脉充盈迟缓", "DF"),
        _code("VEN_DELAY", "delayed venous filling", "静脉充盈迟缓", "DF"),
        _code("CHOR_FILL_DEFECT", "choroidal filling defect", "脉络膜充盈缺损", "DF"),
        _code("MA", "microaneurysms", "微血管瘤", "IV+LK"),
        _code(
            "HEME_BLOCK",
            "haemorrhage with blocked fluorescence",
            "出血遮蔽荧光",
            "BL",
            ("dot", "blot", "flame", "preretinal", "subretinal"),
        ),
        _code("EXUDATE_BLOCK", "hard exudate blockage", "硬性渗出遮蔽荧光", "BL"),
        _code("PIGMENT_BLOCK", "pigment blockage", "色素遮蔽荧光", "BL"),
        _code("NPA", "capillary non-perfusion", "毛细血管无灌注区", "NP"),
        _code("FAZ_ENLARGED", "enlarged foveal avascular zone", "黄斑拱环扩大", "NP"),
        _code("IRMA", "intraretinal microvascular abnormalities", "视网膜内微血管异常", "IV"),
        _code("VENOUS_BEADING", "venous beading", "静脉串珠样改变", "IV"),
        _code("VEIN_DILATED_TORTUOUS", "dilated tortuous veins", "静脉迂曲扩张", "IV"),
        _code("COLLATERAL", "collateral vessels", "侧支循环", "IV"),
        _code("NVD", "disc neovascularisation", "视盘新生血管", "IV+LK"),
        _code("NVE", "neovascularisation elsewhere", "视网膜新生血管", "IV+LK"),
        _code("TELANGIECTASIA", "telangiectasia", "毛细血管扩张", "IV+LK"),
        _code("MACROANEURYSM", "arterial macroaneurysm", "视网膜大动脉瘤", "IV+LK+BL"),
        _code("LEAK_FOCAL", "focal leakage", "局灶性渗漏", "LK"),
        _code("LEAK_DIFFUSE", "diffuse leakage", "弥漫性渗漏", "LK"),
        _code("CME", "cystoid macular oedema", "黄斑囊样水肿", "PL"),
        _code("CSC_LEAK", "CSC leak point", "渗漏点", "LK+PL", ("ink_blot", "smokestack")),
        _code("POOL_SRD", "pooling in serous retinal detachment", "神经上皮脱离荧光积存", "PL"),
        _code("POOL_PED", "pooling in pigment epithelial detachment", "色素上皮脱离荧光积存", "PL"),
        _code("CNV_CLASSIC", "classic choroidal neovascularisation", "典型性脉络膜新生血管", "IV+LK+PL"),
        _code(
            "CNV_OCCULT",
            "occult choroidal neovascularisation",
            "隐匿性脉络膜新生血管",
            "LK+ST",
            ("fibrovascular_PED", "late_leakage"),
        ),
        _code("VESSEL_WALL_STAIN", "vessel wall staining", "血管壁着染", "ST+LK"),
        _code("CAPILLARY_LEAK", "capillary leakage", "毛细血管渗漏", "LK"),
        _code("PINPOINT_LEAKS", "multiple pinpoint leaks", "多发点状渗漏", "LK+PL"),
        _code("DISC_LEAK", "disc leakage", "视盘渗漏", "LK"),
        _code("STAIN_SCAR", "scar staining", "瘢痕着染", "ST"),
        _code("DRUSEN", "drusen", "玻璃膜疣", "WD+ST"),
        _code("WINDOW_DEFECT", "window defect", "透见荧光", "WD"),
        _code("LASER_SCARS", "laser photocoagulation scars", "激光斑", "BL+WD+ST", ("PRP", "grid", "focal")),
        _code("NORMAL", "no abnormal fluorescence", "未见明显异常荧光", ""),
    )
}


@dataclass(frozen=True)
class DiagnosisCode:
    """A diagnosis with the grades (or types) it may carry."""

    code: str
    en: str
    zh: str
    grades: tuple[str, ...] = ()


DIAGNOSIS_CODES: dict[str, DiagnosisCode] = {
    d.code: d
    for d in (
        DiagnosisCode(
            "DR",
            "diabetic retinopathy",
            "糖尿病视网膜病变",
            ("mild_NPDR", "moderate_NPDR", "severe_NPDR", "PDR"),
        ),
        DiagnosisCode("DME", "diabetic macular oedema", "糖尿病黄斑水肿", ("focal", "diffuse", "cystoid")),
        DiagnosisCode(
            "BRVO", "branch retinal vein occlusion", "视网膜分支静脉阻塞", ("non_ischemic", "ischemic")
        ),
        DiagnosisCode(
            "CRVO", "central retinal vein occlusion", "视网膜中央静脉阻塞", ("non_ischemic", "ischemic")
        ),
        DiagnosisCode(
            "CSC", "central serous chorioretinopathy", "中心性浆液性脉络膜视网膜病变", ("acute", "chronic")
        ),
        DiagnosisCode(
            "nAMD",
            "neovascular age-related macular degeneration",
            "新生血管性年龄相关性黄斑变性",
            ("classic", "occult", "mixed"),
        ),
        DiagnosisCode(
            "dryAMD", "dry age-related macular degeneration", "干性年龄相关性黄斑变性", ("drusen", "GA")
        ),
        DiagnosisCode("myopicCNV", "myopic choroidal neovascularisation", "病理性近视脉络膜新生血管"),
        DiagnosisCode(
            "uveitis",
            "uveitis with retinal vasculitis",
            "葡萄膜炎伴视网膜血管炎",
            ("posterior", "panuveitis", "VKH"),
        ),
        DiagnosisCode("RAO", "retinal artery occlusion", "视网膜动脉阻塞", ("central", "branch")),
        DiagnosisCode("Coats", "Coats disease", "Coats病", ("stage_2", "stage_3")),
        DiagnosisCode("normal", "normal fundus fluorescein angiogram", "眼底荧光造影未见明显异常"),
    )
}


@dataclass(frozen=True)
class Extent:
    value: float
    unit: str  # one of EXTENT_UNITS


@dataclass(frozen=True)
class Finding:
    """One sign in one eye, with what a report can say about it."""

    code: str
    location: tuple[str, ...] = ()
    onset_phase: str | None = None
    evolution: str | None = None
    extent: Extent | None = None
    count_bucket: str | None = None
    severity: str | None = None
    certainty: str = "definite"
    subtype: str | None = None

    def __post_init__(self) -> None:
        if self.code not in FINDING_CODES:
            raise ValueError(f"unknown finding code {self.code!r}; expected one of {sorted(FINDING_CODES)}")
        _check("location", self.location, LOCATIONS)
        _check("onset_phase", self.onset_phase, PHASES)
        _check("evolution", self.evolution, EVOLUTIONS)
        _check("count_bucket", self.count_bucket, COUNT_BUCKETS)
        _check("severity", self.severity, SEVERITIES)
        _check("certainty", self.certainty, CERTAINTIES)
        if self.extent is not None:
            _check("extent.unit", self.extent.unit, EXTENT_UNITS)
        subtypes = FINDING_CODES[self.code].subtypes
        if self.subtype is not None and self.subtype not in subtypes:
            raise ValueError(f"{self.code}: subtype {self.subtype!r} is not one of {subtypes}")


@dataclass(frozen=True)
class Diagnosis:
    code: str
    grade: str | None = None

    def __post_init__(self) -> None:
        if self.code not in DIAGNOSIS_CODES:
            raise ValueError(f"unknown diagnosis {self.code!r}; expected one of {sorted(DIAGNOSIS_CODES)}")
        grades = DIAGNOSIS_CODES[self.code].grades
        if self.grade is not None and self.grade not in grades:
            raise ValueError(f"{self.code}: grade {self.grade!r} is not one of {grades}")


@dataclass(frozen=True)
class Findings:
    """Everything one report states about one eye.

    ``present`` are the signs seen, ``absent`` the codes the report explicitly denies ("no leakage from the
    disc"), ``arm_retina_s`` the arm-to-retina circulation time when stated.
    """

    eye: str = "OD"
    present: tuple[Finding, ...] = ()
    absent: frozenset[str] = field(default_factory=frozenset)
    diagnoses: tuple[Diagnosis, ...] = ()
    arm_retina_s: float | None = None

    def __post_init__(self) -> None:
        _check("eye", self.eye, EYES)
        unknown = set(self.absent) - set(FINDING_CODES)
        if unknown:
            raise ValueError(f"unknown negated finding codes {sorted(unknown)}")

    def codes(self) -> set[str]:
        """The finding codes stated present."""
        return {f.code for f in self.present}

    def negated(self) -> set[str]:
        """The finding codes stated absent."""
        return set(self.absent)

    def diagnosis_codes(self) -> set[str]:
        return {d.code for d in self.diagnoses}

    def with_eye(self, eye: str) -> Findings:
        return replace(self, eye=eye)


def _check(name: str, value: object, allowed: tuple[str, ...]) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v is not None and v not in allowed:
            raise ValueError(f"{name}: {v!r} is not one of {allowed}")
