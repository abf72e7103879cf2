"""The parser on hand-written free-text reports (English and Chinese) and on its negation rules."""

from __future__ import annotations

import pytest

from ffasora.findings import Diagnosis, Extent, parse_report, to_canonical_english
from ffasora.findings.parser import detect_language

# (report, eye, present codes, negated codes, diagnoses)
ENGLISH = [
    (
        "OD: Arm-to-retina time 13 s. Early AV phase: numerous MAs scattered throughout the posterior pole with blot "
        "haemorrhages causing blocked fluorescence. Areas of capillary non-perfusion, approx. 8 DA, in the "
        "inferotemporal mid-periphery. NVE along the superotemporal arcade leaks profusely in the late phase. Late "
        "phase: diffuse leakage at the macula with petaloid pooling. No leakage from the disc. "
        "Impression: PDR with DME (cystoid), OD.",
        "OD",
        {"MA", "HEME_BLOCK", "NPA", "NVE", "LEAK_DIFFUSE", "CME"},
        {"DISC_LEAK"},
        {Diagnosis("DR", "PDR"), Diagnosis("DME", "cystoid")},
    ),
    (
        "Left eye. A-R time 11s. Transit phase shows a single expanding ink-blot leak point superonasal to the fovea, "
        "with pooling of dye in a serous retinal detachment in the late frames. No CNV. The disc is normal. "
        "Impression: acute CSC, left eye.",
        "OS",
        {"CSC_LEAK", "POOL_SRD"},
        {"CNV_CLASSIC", "CNV_OCCULT"},
        {Diagnosis("CSC", "acute")},
    ),
    (
        "Right eye: prolonged arteriovenous transit with dilated tortuous veins in the superotemporal quadrant and "
        "flame-shaped haemorrhages blocking fluorescence. Capillary non-perfusion of about 6 DD superotemporally. "
        "Late staining of the vein walls. CME in the late phase. No NVD or NVE. "
        "Impression: ischaemic BRVO (superotemporal) OD.",
        "OD",
        {"VEN_DELAY", "VEIN_DILATED_TORTUOUS", "HEME_BLOCK", "NPA", "VESSEL_WALL_STAIN", "CME"},
        {"NVD", "NVE"},
        {Diagnosis("BRVO", "ischemic")},
    ),
    (
        "OS: Normal arm-to-retina time. Early hyperfluorescence of a well-defined classic CNV beneath the fovea, "
        "leaking progressively in the late phase; scattered drusen. No PED. "
        "Diagnosis: neovascular AMD (predominantly classic), OS.",
        "OS",
        {"CNV_CLASSIC", "DRUSEN"},
        {"POOL_PED"},
        {Diagnosis("nAMD", "classic")},
    ),
    (
        "OD: Angiogram shows possible IRMA at the margins of non-perfused retina in the nasal mid-periphery, without "
        "neovascularisation. Few microaneurysms in the macula. Hard exudates block the background. "
        "Impression: severe NPDR.",
        "OD",
        {"IRMA", "NPA", "MA", "EXUDATE_BLOCK"},
        {"NVE", "NVD"},
        {Diagnosis("DR", "severe_NPDR")},
    ),
    (
        "RE: vessel wall staining and fern-like capillary leakage in the mid-periphery, disc hyperfluorescence in the "
        "late phase; no macular oedema. Impression: panuveitis with retinal vasculitis.",
        "OD",
        {"VESSEL_WALL_STAIN", "CAPILLARY_LEAK", "DISC_LEAK"},
        {"CME", "LEAK_DIFFUSE"},
        {Diagnosis("uveitis", "panuveitis")},
    ),
    (
        "Left eye: delayed arterial filling with segmented flow; no leakage. NVD is absent. "
        "Impression: central retinal artery occlusion.",
        "OS",
        {"ART_DELAY"},
        {"LEAK_FOCAL", "LEAK_DIFFUSE", "NVD"},
        {Diagnosis("RAO", "central")},
    ),
    (
        "Left eye: no abnormal fluorescence. Impression: normal FFA.",
        "OS",
        {"NORMAL"},
        set(),
        {Diagnosis("normal")},
    ),
    (
        "OD: multiple hyperfluorescent dots at the posterior pole suggestive of MAs, some leaking in late phase. "
        "Large areas of CNP temporally (>10 DA). No NVD/NVE.",
        "OD",
        {"MA", "NPA"},
        {"NVD", "NVE"},
        set(),
    ),
    (
        "Right eye FFA shows hypofluorescence due to vitreous haemorrhage inferiorly; NV at the disc leaking "
        "profusely. Impression: PDR with vitreous haemorrhage.",
        "OD",
        {"HEME_BLOCK", "NVD"},
        set(),
        {Diagnosis("DR", "PDR")},
    ),
    (
        "OS: smokestack leak superior to the fovea with SRD. Impression: CSCR.",
        "OS",
        {"CSC_LEAK", "POOL_SRD"},
        set(),
        {Diagnosis("CSC")},
    ),
]

CHINESE = [
    (
        "右眼：臂-视网膜循环时间12秒。造影早期后极部散在大量微血管瘤，以黄斑颞侧为著；颞下方中周部可见约6个视盘面积的毛细血管"
        "无灌注区。颞上血管弓旁见新生血管，早期即呈强荧光，随时间延长渗漏明显增强。造影晚期黄斑区弥漫性渗漏，呈花瓣状荧光积存。"
        "视盘未见渗漏。诊断：右眼增殖期糖尿病视网膜病变，黄斑囊样水肿。",
        "OD",
        {"MA", "NPA", "NVE", "LEAK_DIFFUSE", "CME"},
        {"DISC_LEAK"},
        {Diagnosis("DR", "PDR")},
    ),
    (
        "左眼：动静脉期黄斑中心凹鼻上方见一墨渍样渗漏点，随时间延长逐渐扩大，晚期神经上皮脱离区荧光积存，约2PD。"
        "未见脉络膜新生血管。诊断：左眼急性中心性浆液性脉络膜视网膜病变。",
        "OS",
        {"CSC_LEAK", "POOL_SRD"},
        {"CNV_CLASSIC", "CNV_OCCULT"},
        {Diagnosis("CSC", "acute")},
    ),
    (
        "右眼：颞上方静脉迂曲扩张，沿静脉可见火焰状出血遮蔽荧光，静脉充盈迟缓；颞上方可见大片无灌注区，约8PD；晚期黄斑囊样水肿。"
        "未见新生血管。诊断：右眼视网膜分支静脉阻塞（缺血型）。",
        "OD",
        {"VEIN_DILATED_TORTUOUS", "HEME_BLOCK", "VEN_DELAY", "NPA", "CME"},
        {"NVD", "NVE"},
        {Diagnosis("BRVO", "ischemic")},
    ),
    (
        "左眼：黄斑区可见典型性CNV，早期强荧光，晚期渗漏；后极部多个玻璃膜疣。无色素上皮脱离。诊断：左眼湿性年龄相关性黄斑变性。",
        "OS",
        {"CNV_CLASSIC", "DRUSEN"},
        {"POOL_PED"},
        {Diagnosis("nAMD")},
    ),
    (
        "右眼：各期未见明显异常荧光。诊断：眼底荧光造影未见明显异常。",
        "OD",
        {"NORMAL"},
        set(),
        {Diagnosis("normal")},
    ),
    (
        "左眼：视网膜静脉管壁着染，中周部毛细血管渗漏，视盘强荧光；黄斑区未见渗漏。考虑葡萄膜炎伴视网膜血管炎，请结合临床。",
        "OS",
        {"VESSEL_WALL_STAIN", "CAPILLARY_LEAK", "DISC_LEAK"},
        {"LEAK_FOCAL", "LEAK_DIFFUSE"},
        {Diagnosis("uveitis")},
    ),
    (
        "右眼：全视网膜光凝后激光斑，可疑视网膜新生血管，黄斑区无明显水肿。诊断：PDR（PRP术后）。",
        "OD",
        {"LASER_SCARS", "NVE"},
        {"CME", "LEAK_DIFFUSE"},
        {Diagnosis("DR", "PDR")},
    ),
    (
        "左眼：臂-视网膜循环时间16.5秒，动脉充盈迟缓，可见动脉节段状充盈。晚期未见渗漏。诊断：左眼视网膜中央动脉阻塞。",
        "OS",
        {"ART_DELAY"},
        {"LEAK_FOCAL", "LEAK_DIFFUSE"},
        {Diagnosis("RAO", "central")},
    ),
    (
        "右眼：造影早期视盘表面见新生血管，晚期荧光素渗漏明显；中周部大片毛细血管无灌注区，并见激光斑。诊断：右眼PDR，PRP术后。",
        "OD",
        {"NVD", "NPA", "LASER_SCARS"},
        set(),
        {Diagnosis("DR", "PDR")},
    ),
    (
        "左眼：后极部可见少许点状强荧光，考虑微血管瘤；黄斑区可见硬性渗出遮蔽荧光。未见无灌注区及新生血管。诊断：左眼中度NPDR。",
        "OS",
        {"MA", "EXUDATE_BLOCK"},
        {"NPA", "NVD", "NVE"},
        {Diagnosis("DR", "moderate_NPDR")},
    ),
    (
        "右眼：黄斑区见强荧光渗漏，晚期呈花瓣状积存，未见视盘渗漏。提示黄斑囊样水肿",
        "OD",
        {"CME"},
        {"DISC_LEAK"},
        set(),
    ),
]


@pytest.mark.parametrize(("text", "eye", "present", "negated", "dx"), ENGLISH + CHINESE)
def test_free_text_reports_parse_to_expected_codes(
    text: str, eye: str, present: set[str], negated: set[str], dx: set[Diagnosis]
) -> None:
    f = parse_report(text)
    assert f.eye == eye
    assert f.codes() == present
    assert f.negated() == negated
    assert set(f.diagnoses) == dx


def test_free_text_attributes() -> None:
    f = {x.code: x for x in parse_report(ENGLISH[0][0]).present}
    assert f["MA"].count_bucket == "numerous" and f["MA"].location == ("posterior_pole",)
    assert f["MA"].onset_phase == "early_AV"
    assert f["NPA"].extent == Extent(8.0, "DA") and set(f["NPA"].location) == {
        "inferotemporal",
        "mid_periphery",
    }
    assert f["HEME_BLOCK"].subtype == "blot" and f["CME"].onset_phase == "late"
    assert parse_report(ENGLISH[0][0]).arm_retina_s == 13.0
    z = {x.code: x for x in parse_report(CHINESE[0][0]).present}
    assert z["NPA"].extent == Extent(6.0, "DA") and z["NVE"].evolution == "increasing"
    assert set(z["MA"].location) == {"posterior_pole", "macula", "temporal"}
    assert parse_report(CHINESE[1][0]).present[0].subtype == "ink_blot"
    assert {x.code: x for x in parse_report(CHINESE[1][0]).present}["POOL_SRD"].extent == Extent(2.0, "DD")
    assert {x.code: x for x in parse_report(ENGLISH[4][0]).present}["IRMA"].certainty == "suspected"
    assert {x.code: x for x in parse_report(ENGLISH[9][0]).present}["HEME_BLOCK"].subtype == "preretinal"
    assert parse_report(ENGLISH[10][0]).present[0].subtype == "smokestack"
    assert {x.code: x for x in parse_report(CHINESE[8][0]).present}["NVD"].onset_phase == "early_AV"
    assert parse_report(CHINESE[9][0]).present[0].certainty == "suspected"


@pytest.mark.parametrize(
    ("text", "present", "negated"),
    [
        ("No leakage from the disc, but numerous MAs in the macula.", {"MA"}, {"DISC_LEAK"}),
        ("Microaneurysms without leakage.", {"MA"}, set()),
        ("There is no evidence of NVD, NVE or CME.", set(), {"NVD", "NVE", "CME"}),
        ("Absence of capillary non-perfusion; focal leakage temporal to the fovea.", {"LEAK_FOCAL"}, {"NPA"}),
        ("Drusen are seen. Window defects were not observed.", {"DRUSEN"}, {"WINDOW_DEFECT"}),
        ("未见明显微血管瘤，可见多处无灌注区。", {"NPA"}, {"MA"}),
        ("无新生血管，但见视盘渗漏。", {"DISC_LEAK"}, {"NVE", "NVD"}),
        ("视盘未见渗漏，黄斑区见局灶性渗漏。", {"LEAK_FOCAL"}, {"DISC_LEAK"}),
    ],
)
def test_negation_scope(text: str, present: set[str], negated: set[str]) -> None:
    f = parse_report(text)
    assert f.codes() == present and f.negated() == negated


def test_language_detection_and_canonical_english() -> None:
    assert detect_language(CHINESE[0][0]) == "zh" and detect_language(ENGLISH[0][0]) == "en"
    english = to_canonical_english(CHINESE[2][0])
    assert detect_language(english) == "en"
    again = parse_report(english)
    original = parse_report(CHINESE[2][0])
    assert again.codes() == original.codes() and again.negated() == original.negated()
    assert again.diagnoses == original.diagnoses and again.eye == "OD"


def test_non_text_raises() -> None:
    with pytest.raises(ValueError, match="str"):
        parse_report(None)  # type: ignore[arg-type]
