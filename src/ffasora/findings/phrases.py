"""The writer's phrasebook: how each code, attribute and diagnosis is said in English and in Chinese.

Every entry has several paraphrases (design reference §4.2 asks for 3-6 per slot); the writer picks one with
its seeded generator. Every phrase here must be read back by the parser's lexicon (``lexicon.py``) to the same
code and attributes: the round-trip tests enforce that, so a phrase added here needs its pattern there.

Nouns are ``(singular, plural)`` pairs; ``{sub}`` marks where a subtype phrase goes.
"""

from __future__ import annotations

Noun = tuple[str, str]


def _n(singular: str, plural: str | None = None) -> Noun:
    return (singular, plural if plural is not None else singular)


# --- finding names -------------------------------------------------------------------------------------------

NAMES_EN: dict[str, list[Noun]] = {
    "ART_DELAY": [
        _n("delayed filling of the retinal arteries"),
        _n("delayed arterial filling"),
        _n("retarded arterial filling"),
        _n("a delayed arterial filling front"),
    ],
    "VEN_DELAY": [
        _n("delayed venous filling"),
        _n("delayed filling of the retinal veins"),
        _n("prolonged arteriovenous transit"),
        _n("slow venous filling"),
    ],
    "CHOR_FILL_DEFECT": [
        _n("choroidal filling defect", "choroidal filling defects"),
        _n("patchy choroidal hypoperfusion"),
        _n("area of delayed choroidal filling", "areas of delayed choroidal filling"),
    ],
    "MA": [
        _n("microaneurysm", "microaneurysms"),
        _n(
            "dot hyperfluorescence consistent with a microaneurysm",
            "dot hyperfluorescence consistent with microaneurysms",
        ),
        _n("MA", "MAs"),
        _n("pinpoint hyperfluorescent microaneurysm", "pinpoint hyperfluorescent microaneurysms"),
    ],
    "HEME_BLOCK": [
        _n("{sub}haemorrhage with blocked fluorescence", "{sub}haemorrhages with blocked fluorescence"),
        _n("blocked fluorescence from a {sub}haemorrhage", "blocked fluorescence from {sub}haemorrhages"),
        _n("hypofluorescence due to {sub}haemorrhage"),
        _n("{sub}hemorrhage masking the background", "{sub}hemorrhages masking the background"),
    ],
    "EXUDATE_BLOCK": [
        _n("hard exudate blocking fluorescence", "hard exudates blocking fluorescence"),
        _n("blocked fluorescence from hard exudates"),
        _n("hypofluorescence from hard exudate", "hypofluorescence from hard exudates"),
    ],
    "PIGMENT_BLOCK": [
        _n("pigment clump with blocked fluorescence", "pigment clumps with blocked fluorescence"),
        _n("blocked fluorescence from pigment clumping"),
        _n("pigmentary blockage"),
    ],
    "NPA": [
        _n("area of capillary non-perfusion", "areas of capillary non-perfusion"),
        _n("capillary non-perfusion"),
        _n("non-perfusion area", "non-perfusion areas"),
        _n("NPA", "NPAs"),
        _n("capillary dropout"),
    ],
    "FAZ_ENLARGED": [
        _n("enlarged foveal avascular zone"),
        _n("enlarged and irregular FAZ"),
        _n("enlargement of the foveal avascular zone"),
        _n("irregular enlarged FAZ"),
    ],
    "IRMA": [
        _n("intraretinal microvascular abnormality", "intraretinal microvascular abnormalities"),
        _n("IRMA"),
        _n("IRMA segment", "IRMA segments"),
    ],
    "VENOUS_BEADING": [_n("venous beading"), _n("beading of the veins"), _n("beaded veins")],
    "VEIN_DILATED_TORTUOUS": [
        _n("dilated tortuous veins"),
        _n("tortuous and dilated retinal veins"),
        _n("venous dilatation and tortuosity"),
        _n("engorged tortuous veins"),
    ],
    "COLLATERAL": [
        _n("collateral vessel", "collateral vessels"),
        _n("collateral", "collaterals"),
        _n("shunt vessel", "shunt vessels"),
    ],
    "NVD": [
        _n("neovascularisation of the disc"),
        _n("NVD"),
        _n("new vessels at the disc"),
        _n("disc neovascularization"),
    ],
    "NVE": [
        _n("neovascularisation elsewhere"),
        _n("NVE"),
        _n("neovascular frond", "neovascular fronds"),
        _n("retinal neovascularization"),
        _n("new vessel complex", "new vessel complexes"),
    ],
    "TELANGIECTASIA": [
        _n("telangiectatic vessel", "telangiectatic vessels"),
        _n("telangiectasia"),
        _n("light-bulb aneurysm", "light-bulb aneurysms"),
    ],
    "MACROANEURYSM": [
        _n("arterial macroaneurysm", "arterial macroaneurysms"),
        _n("retinal arterial macroaneurysm", "retinal arterial macroaneurysms"),
        _n("macroaneurysm", "macroaneurysms"),
    ],
    "LEAK_FOCAL": [
        _n("focal leakage"),
        _n("focal leak", "focal leaks"),
        _n("focal area of leakage", "focal areas of leakage"),
        _n("localised leakage"),
    ],
    "LEAK_DIFFUSE": [
        _n("diffuse leakage"),
        _n("diffuse hyperfluorescent leakage"),
        _n("diffusely leaking capillaries"),
    ],
    "CME": [
        _n("cystoid macular oedema"),
        _n("CME"),
        _n("petaloid pooling"),
        _n("cystoid macular edema with a petaloid pattern"),
        _n("flower-petal pooling"),
    ],
    "CSC_LEAK": [
        _n("{sub}leak point", "{sub}leak points"),
        _n("{sub}leakage point", "{sub}leakage points"),
        _n("expansile {sub}leak point", "expansile {sub}leak points"),
    ],
    "POOL_SRD": [
        _n("pooling in a serous retinal detachment", "pooling in serous retinal detachments"),
        _n("pooling of dye in a neurosensory detachment", "pooling of dye in neurosensory detachments"),
        _n("serous retinal detachment with pooling", "serous retinal detachments with pooling"),
        _n("SRD with dye pooling"),
    ],
    "POOL_PED": [
        _n("pooling in a pigment epithelial detachment", "pooling in pigment epithelial detachments"),
        _n("serous PED", "serous PEDs"),
        _n("pigment epithelial detachment with pooling", "pigment epithelial detachments with pooling"),
    ],
    "CNV_CLASSIC": [
        _n("classic choroidal neovascularisation"),
        _n("classic CNV"),
        _n("well-demarcated CNV"),
        _n("lacy classic CNV membrane"),
    ],
    "CNV_OCCULT": [
        _n("occult choroidal neovascularisation{sub}"),
        _n("occult CNV{sub}"),
        _n("occult CNV lesion{sub}", "occult CNV lesions{sub}"),
    ],
    "VESSEL_WALL_STAIN": [
        _n("vessel wall staining"),
        _n("staining of the vessel walls"),
        _n("venous wall staining"),
        _n("perivascular staining"),
    ],
    "CAPILLARY_LEAK": [
        _n("capillary leakage"),
        _n("fern-like capillary leakage"),
        _n("diffuse capillary leakage"),
    ],
    "PINPOINT_LEAKS": [
        _n("multiple pinpoint leaks"),
        _n("pinpoint leakage"),
        _n("multifocal pinpoint leaks"),
    ],
    "DISC_LEAK": [
        _n("disc leakage"),
        _n("leakage from the optic disc"),
        _n("disc hyperfluorescence"),
        _n("hyperfluorescence of the disc"),
    ],
    "STAIN_SCAR": [
        _n("scar staining"),
        _n("staining of a fibrous scar", "staining of fibrous scars"),
        _n("disciform scar staining"),
    ],
    "DRUSEN": [_n("druse", "drusen"), _n("drusen"), _n("hyperfluorescent drusen")],
    "WINDOW_DEFECT": [
        _n("window defect", "window defects"),
        _n("transmission defect", "transmission defects"),
        _n("transmitted hyperfluorescence"),
    ],
    "LASER_SCARS": [
        _n("{sub}laser scar", "{sub}laser scars"),
        _n("{sub}laser photocoagulation scar", "{sub}laser photocoagulation scars"),
        _n("{sub}laser burn", "{sub}laser burns"),
    ],
}

NAMES_ZH: dict[str, list[str]] = {
    "ART_DELAY": ["动脉充盈迟缓", "视网膜动脉充盈延迟", "动脉充盈缓慢"],
    "VEN_DELAY": ["静脉充盈迟缓", "静脉充盈延迟", "视网膜静脉回流迟缓"],
    "CHOR_FILL_DEFECT": ["脉络膜充盈缺损", "脉络膜充盈迟缓区", "斑片状脉络膜充盈缺损"],
    "MA": ["微血管瘤", "微血管瘤样点状强荧光", "微动脉瘤", "MA"],
    "HEME_BLOCK": ["{sub}出血遮蔽荧光", "{sub}出血所致荧光遮蔽", "{sub}出血灶遮蔽荧光"],
    "EXUDATE_BLOCK": ["硬性渗出遮蔽荧光", "硬性渗出所致弱荧光", "硬渗遮挡荧光"],
    "PIGMENT_BLOCK": ["色素遮蔽荧光", "色素沉着遮挡荧光", "色素堆积所致弱荧光"],
    "NPA": ["毛细血管无灌注区", "无灌注区", "毛细血管闭塞区", "NPA"],
    "FAZ_ENLARGED": ["黄斑拱环扩大", "黄斑拱环破坏", "中心凹无血管区扩大"],
    "IRMA": ["视网膜内微血管异常", "IRMA", "视网膜内微血管异常（IRMA）"],
    "VENOUS_BEADING": ["静脉串珠样改变", "静脉呈串珠样", "静脉串珠"],
    "VEIN_DILATED_TORTUOUS": ["静脉迂曲扩张", "静脉扩张迂曲", "视网膜静脉迂曲扩张"],
    "COLLATERAL": ["侧支循环", "侧支血管", "侧支循环血管"],
    "NVD": ["视盘新生血管", "NVD", "视盘表面新生血管"],
    "NVE": ["视网膜新生血管", "NVE", "新生血管芽", "视网膜新生血管膜"],
    "TELANGIECTASIA": ["毛细血管扩张", "灯泡样血管瘤", "血管扩张"],
    "MACROANEURYSM": ["视网膜大动脉瘤", "大动脉瘤", "动脉瘤样扩张"],
    "LEAK_FOCAL": ["局灶性渗漏", "局限性荧光渗漏", "局部荧光素渗漏"],
    "LEAK_DIFFUSE": ["弥漫性渗漏", "弥漫性荧光素渗漏", "弥漫性强荧光渗漏"],
    "CME": ["黄斑囊样水肿", "花瓣状荧光积存", "CME", "囊样水肿"],
    "CSC_LEAK": ["{sub}渗漏点", "{sub}荧光素渗漏点", "{sub}强荧光渗漏点"],
    "POOL_SRD": ["神经上皮脱离荧光积存", "神经上皮脱离区荧光积存", "浆液性视网膜脱离"],
    "POOL_PED": ["色素上皮脱离荧光积存", "色素上皮脱离", "PED"],
    "CNV_CLASSIC": ["典型性脉络膜新生血管", "典型性CNV", "经典型CNV"],
    "CNV_OCCULT": ["隐匿性脉络膜新生血管{sub}", "隐匿性CNV{sub}"],
    "VESSEL_WALL_STAIN": ["血管壁着染", "静脉管壁着染", "血管壁荧光着染"],
    "CAPILLARY_LEAK": ["毛细血管渗漏", "羊齿状毛细血管渗漏", "毛细血管弥漫性渗漏"],
    "PINPOINT_LEAKS": ["多发点状渗漏", "多灶性针尖样渗漏", "多处针尖状渗漏点"],
    "DISC_LEAK": ["视盘渗漏", "视盘强荧光", "视盘荧光素渗漏"],
    "STAIN_SCAR": ["瘢痕着染", "瘢痕组织着染", "盘状瘢痕着染"],
    "DRUSEN": ["玻璃膜疣", "玻璃膜疣样强荧光", "玻璃膜疣着染"],
    "WINDOW_DEFECT": ["透见荧光", "窗样缺损", "窗样透见荧光"],
    "LASER_SCARS": ["{sub}激光斑", "{sub}激光光凝斑", "{sub}光凝斑"],
}

# Subtype phrases: English adjectives end with a space (they go before the noun); suffixes start with one.
SUBTYPES_EN: dict[str, dict[str, list[str]]] = {
    "HEME_BLOCK": {
        "dot": ["dot "],
        "blot": ["blot "],
        "flame": ["flame-shaped ", "flame "],
        "preretinal": ["preretinal "],
        "subretinal": ["subretinal "],
    },
    "CSC_LEAK": {
        "ink_blot": ["ink-blot ", "inkblot-pattern "],
        "smokestack": ["smokestack ", "smoke-stack "],
    },
    "CNV_OCCULT": {
        "fibrovascular_PED": [" with a fibrovascular PED", " of fibrovascular PED type"],
        "late_leakage": [" with late leakage of undetermined source"],
    },
    "LASER_SCARS": {"PRP": ["PRP ", "panretinal photocoagulation "], "grid": ["grid "], "focal": ["focal "]},
}

SUBTYPES_ZH: dict[str, dict[str, list[str]]] = {
    "HEME_BLOCK": {
        "dot": ["点状"],
        "blot": ["斑片状", "片状"],
        "flame": ["火焰状"],
        "preretinal": ["视网膜前"],
        "subretinal": ["视网膜下"],
    },
    "CSC_LEAK": {"ink_blot": ["墨渍样"], "smokestack": ["炊烟状"]},
    "CNV_OCCULT": {
        "fibrovascular_PED": ["（纤维血管性色素上皮脱离型）", "伴纤维血管性色素上皮脱离"],
        "late_leakage": ["伴来源不明的迟发性渗漏"],
    },
    "LASER_SCARS": {"PRP": ["全视网膜光凝", "PRP"], "grid": ["格栅样"], "focal": ["局灶性"]},
}

# Phrases for a code in the negatives sentence, where the plain name reads best.
NEGATIVE_EN: dict[str, list[str]] = {
    "DISC_LEAK": ["leakage from the disc", "disc leakage"],
    "HEME_BLOCK": ["haemorrhage", "blocked fluorescence from haemorrhage"],
    "CSC_LEAK": ["leak point", "point of leakage"],
    "CNV_OCCULT": ["occult CNV", "occult choroidal neovascularisation"],
    "LASER_SCARS": ["laser scars"],
}
NEGATIVE_ZH: dict[str, list[str]] = {
    "HEME_BLOCK": ["出血遮蔽荧光", "出血"],
    "CSC_LEAK": ["渗漏点"],
    "CNV_OCCULT": ["隐匿性CNV"],
    "LASER_SCARS": ["激光斑"],
}

# --- attributes ----------------------------------------------------------------------------------------------

ZONE_EN = {
    "fovea": ["fovea"],
    "parafovea": ["parafoveal region", "parafovea"],
    "perifovea": ["perifoveal region", "perifovea"],
    "macula": ["macula", "macular area"],
    "peripapillary": ["peripapillary region", "peripapillary retina"],
    "disc": ["optic disc"],
    "posterior_pole": ["posterior pole"],
    "arcade": ["vascular arcade", "arcade"],
    "mid_periphery": ["mid-periphery", "mid-peripheral retina"],
    "far_periphery": ["far periphery", "far peripheral retina"],
}
SECTOR_EN = {s: [s] for s in ("superotemporal", "inferotemporal", "superonasal", "inferonasal")}
SECTOR_EN |= {
    "superior": ["superior"],
    "inferior": ["inferior"],
    "temporal": ["temporal"],
    "nasal": ["nasal"],
}

ZONE_ZH = {
    "fovea": ["黄斑中心凹"],
    "parafovea": ["中心凹旁"],
    "perifovea": ["中心凹周围"],
    "macula": ["黄斑区", "黄斑"],
    "peripapillary": ["视盘周围", "视盘旁"],
    "disc": ["视盘"],
    "posterior_pole": ["后极部"],
    "arcade": ["血管弓"],
    "mid_periphery": ["中周部"],
    "far_periphery": ["远周边部"],
}
SECTOR_ZH = {
    "superotemporal": ["颞上方", "颞上"],
    "inferotemporal": ["颞下方", "颞下"],
    "superonasal": ["鼻上方", "鼻上"],
    "inferonasal": ["鼻下方", "鼻下"],
    "superior": ["上方"],
    "inferior": ["下方"],
    "temporal": ["颞侧"],
    "nasal": ["鼻侧"],
}

COUNT_EN = {
    "single": ["a single", "one isolated", "a solitary"],
    "few": ["a few", "several", "occasional"],
    "multiple": ["multiple", "many"],
    "numerous": ["numerous", "innumerable", "countless"],
}
COUNT_ZH = {
    "single": ["单个", "孤立的"],
    "few": ["少量", "数个", "少许"],
    "multiple": ["多个", "多处"],
    "numerous": ["大量", "密集的"],
}

SEVERITY_EN = {"mild": ["mild"], "moderate": ["moderate"], "severe": ["severe", "marked"]}
SEVERITY_ZH = {"mild": ["轻度"], "moderate": ["中度"], "severe": ["重度", "明显的"]}

HEDGE_EN = ["suspected", "possible", "probable", "questionable"]
HEDGE_ZH = ["可疑", "疑似", "可能为"]

EVOLUTION_EN = {
    "increasing": [
        "increasing in intensity and size over time",
        "becoming progressively more intense",
        "enlarging as the study proceeds",
        "with progressively increasing leakage",
    ],
    "fading": ["fading over time", "gradually fading", "diminishing in intensity as the dye clears"],
    "stable": [
        "remaining stable throughout",
        "unchanged in size and intensity",
        "stable in extent over time",
    ],
    "tracks_background": [
        "tracking the background choroidal fluorescence",
        "paralleling the background fluorescence",
        "following the choroidal background in brightness",
    ],
}
EVOLUTION_ZH = {
    "increasing": ["随造影时间延长逐渐增强", "荧光逐渐增强、范围扩大", "随时间推移渗漏加重"],
    "fading": ["随时间推移逐渐减弱", "荧光逐渐变淡", "随造影进程荧光减弱"],
    "stable": ["形态大小保持稳定", "荧光强度基本不变", "始终保持稳定"],
    "tracks_background": ["随背景荧光同步变化", "与脉络膜背景荧光同步增减", "亮度随背景荧光变化"],
}

# {v} is the number; one list per extent unit.
EXTENT_EN = {
    "DA": [
        "covering about {v} DA",
        "of approximately {v} disc areas",
        "({v} DA)",
        "measuring about {v} disc areas",
    ],
    "DD": ["about {v} DD across", "measuring approximately {v} disc diameters", "({v} DD)"],
    "clock_hours": ["spanning {v} clock hours", "over about {v} clock hours"],
    "px": ["about {v} px across", "measuring {v} pixels"],
}
EXTENT_ZH = {
    "DA": ["，范围约{v}个视盘面积", "（约{v}DA）", "，面积约{v}DA"],
    "DD": ["，大小约{v}PD", "，约{v}个视盘直径大小", "（约{v}DD）"],
    "clock_hours": ["，累及约{v}个钟点范围", "，约{v}个钟点"],
    "px": ["，约{v}像素", "（{v}像素）"],
}

# --- report scaffolding ----------------------------------------------------------------------------------------

PHASE_EN = {
    "choroidal": ["Choroidal phase", "In the choroidal phase", "Pre-arterial (choroidal) phase"],
    "arterial": ["Arterial phase", "In the arterial phase", "During the arterial phase"],
    "early_AV": ["Early arteriovenous phase", "Early AV phase", "In the early arteriovenous phase"],
    "late_AV": ["Late arteriovenous phase", "Late AV phase", "In the late arteriovenous phase"],
    "venous": ["Venous phase", "In the venous phase", "During the venous phase"],
    "mid": ["Mid phase", "Recirculation phase", "In the mid (recirculation) phase"],
    "late": ["Late phase", "In the late phase", "Late frames"],
}
PHASE_ZH = {
    "choroidal": ["脉络膜期", "脉络膜充盈期", "造影脉络膜期"],
    "arterial": ["动脉期", "视网膜动脉期", "造影动脉期"],
    "early_AV": ["动静脉早期", "动静脉期早期", "早期动静脉期"],
    "late_AV": ["动静脉晚期", "动静脉期晚期", "晚期动静脉期"],
    "venous": ["静脉期", "造影静脉期", "全静脉期"],
    "mid": ["造影中期", "再循环期", "中期"],
    "late": ["造影晚期", "晚期", "造影后期"],
}
ADDITIONAL_EN = ["In addition", "Additionally", "Elsewhere"]
ADDITIONAL_ZH = ["另见", "此外，", "另外，"]

EYE_EN = {"OD": ["OD", "Right eye", "Right eye (OD)", "RE"], "OS": ["OS", "Left eye", "Left eye (OS)", "LE"]}
EYE_ZH = {"OD": ["右眼", "右眼（OD）", "OD"], "OS": ["左眼", "左眼（OS）", "OS"]}

TIMING_EN = [
    "arm-to-retina time {v} s",
    "arm-to-retina circulation time {v} seconds",
    "arm-retina time: {v} s",
    "A-R time {v} s",
]
TIMING_ZH = ["臂-视网膜循环时间{v}秒", "臂-视网膜循环时间约{v}秒", "臂视网膜循环时间：{v}s"]

NEGATION_EN = ["No {x}.", "There is no {x}.", "No evidence of {x}.", "No {x} is seen."]
NEGATION_ZH = ["未见{x}。", "未见明显{x}。", "无{x}。"]

IMPRESSION_EN = [
    "Impression: {eye} {dx}.",
    "Diagnosis: {eye} {dx}.",
    "Impression: {dx} ({eye}).",
    "Impression: {eye} {dx}; clinical correlation is advised.",
]
IMPRESSION_ZH = ["诊断：{eye}{dx}。", "印象：{eye}{dx}。", "诊断：{eye}{dx}，请结合临床。"]
IMPRESSION_EYE_EN = {"OD": ["OD", "right eye"], "OS": ["OS", "left eye"]}
IMPRESSION_EYE_ZH = {"OD": ["右眼", "OD "], "OS": ["左眼", "OS "]}

NORMAL_EN = [
    "Early phase: normal choroidal flush and prompt arterial filling. Arteriovenous phase: laminar venous flow "
    "and complete venous filling. Late phase: no abnormal fluorescence.",
    "Choroidal and retinal circulation fill normally; no abnormal fluorescence throughout the study.",
    "Normal filling sequence with no abnormal hyperfluorescence or hypofluorescence in any phase.",
]
NORMAL_ZH = [
    "造影早期脉络膜充盈正常，动脉充盈及时；动静脉期静脉层流清晰；造影晚期未见明显异常荧光。",
    "各期视网膜血管充盈正常，未见异常荧光。",
    "造影全程视网膜及脉络膜循环正常，未见明显异常荧光。",
]

# Diagnoses: grade -> paraphrases; the key None is the ungraded name.
DIAGNOSIS_EN: dict[str, dict[str | None, list[str]]] = {
    "DR": {
        None: ["diabetic retinopathy", "DR"],
        "mild_NPDR": ["mild non-proliferative diabetic retinopathy", "mild NPDR"],
        "moderate_NPDR": ["moderate non-proliferative diabetic retinopathy", "moderate NPDR"],
        "severe_NPDR": ["severe non-proliferative diabetic retinopathy", "severe NPDR"],
        "PDR": ["proliferative diabetic retinopathy", "PDR"],
    },
    "DME": {
        None: ["diabetic macular oedema", "DME"],
        "focal": ["focal diabetic macular oedema", "focal DME"],
        "diffuse": ["diffuse diabetic macular oedema", "diffuse DME"],
        "cystoid": ["cystoid diabetic macular oedema", "DME (cystoid)"],
    },
    "BRVO": {
        None: ["branch retinal vein occlusion", "BRVO"],
        "ischemic": ["ischaemic branch retinal vein occlusion", "ischemic BRVO"],
        "non_ischemic": ["non-ischaemic branch retinal vein occlusion", "non-ischemic BRVO"],
    },
    "CRVO": {
        None: ["central retinal vein occlusion", "CRVO"],
        "ischemic": ["ischaemic central retinal vein occlusion", "ischemic CRVO"],
        "non_ischemic": ["non-ischaemic central retinal vein occlusion", "non-ischemic CRVO"],
    },
    "CSC": {
        None: ["central serous chorioretinopathy", "CSC"],
        "acute": ["acute central serous chorioretinopathy", "acute CSC"],
        "chronic": ["chronic central serous chorioretinopathy", "chronic CSCR"],
    },
    "nAMD": {
        None: ["neovascular age-related macular degeneration", "wet AMD"],
        "classic": ["neovascular AMD (predominantly classic)", "classic neovascular AMD"],
        "occult": ["neovascular AMD (occult)", "occult wet AMD"],
        "mixed": ["neovascular AMD (mixed type)", "mixed-type nAMD"],
    },
    "dryAMD": {
        None: ["dry age-related macular degeneration", "dry AMD"],
        "drusen": ["dry AMD (drusen)", "drusen-type dry AMD"],
        "GA": ["dry AMD with geographic atrophy", "geographic atrophy (dry AMD)"],
    },
    "myopicCNV": {None: ["myopic choroidal neovascularisation", "myopic CNV"]},
    "uveitis": {
        None: ["uveitis with retinal vasculitis", "retinal vasculitis"],
        "posterior": ["posterior uveitis", "posterior uveitis with retinal vasculitis"],
        "panuveitis": ["panuveitis", "panuveitis with retinal vasculitis"],
        "VKH": ["Vogt-Koyanagi-Harada disease", "VKH"],
    },
    "RAO": {
        None: ["retinal artery occlusion", "RAO"],
        "central": ["central retinal artery occlusion", "CRAO"],
        "branch": ["branch retinal artery occlusion", "BRAO"],
    },
    "Coats": {
        None: ["Coats disease", "Coats' disease"],
        "stage_2": ["Coats disease (stage 2)", "stage 2 Coats disease"],
        "stage_3": ["Coats disease (stage 3)", "stage 3 Coats disease"],
    },
    "normal": {None: ["normal fundus fluorescein angiogram", "normal FFA"]},
}
DIAGNOSIS_ZH: dict[str, dict[str | None, list[str]]] = {
    "DR": {
        None: ["糖尿病视网膜病变", "DR"],
        "mild_NPDR": ["轻度非增殖期糖尿病视网膜病变", "轻度NPDR"],
        "moderate_NPDR": ["中度非增殖期糖尿病视网膜病变", "中度NPDR"],
        "severe_NPDR": ["重度非增殖期糖尿病视网膜病变", "重度NPDR"],
        "PDR": ["增殖期糖尿病视网膜病变", "PDR"],
    },
    "DME": {
        None: ["糖尿病黄斑水肿", "DME"],
        "focal": ["局灶性糖尿病黄斑水肿", "糖尿病黄斑水肿（局灶型）"],
        "diffuse": ["弥漫性糖尿病黄斑水肿", "糖尿病黄斑水肿（弥漫型）"],
        "cystoid": ["囊样糖尿病黄斑水肿", "糖尿病黄斑水肿（囊样型）"],
    },
    "BRVO": {
        None: ["视网膜分支静脉阻塞", "BRVO"],
        "ischemic": ["缺血型视网膜分支静脉阻塞", "视网膜分支静脉阻塞（缺血型）"],
        "non_ischemic": ["非缺血型视网膜分支静脉阻塞", "视网膜分支静脉阻塞（非缺血型）"],
    },
    "CRVO": {
        None: ["视网膜中央静脉阻塞", "CRVO"],
        "ischemic": ["缺血型视网膜中央静脉阻塞", "视网膜中央静脉阻塞（缺血型）"],
        "non_ischemic": ["非缺血型视网膜中央静脉阻塞", "视网膜中央静脉阻塞（非缺血型）"],
    },
    "CSC": {
        None: ["中心性浆液性脉络膜视网膜病变", "中浆"],
        "acute": ["急性中心性浆液性脉络膜视网膜病变", "急性中浆"],
        "chronic": ["慢性中心性浆液性脉络膜视网膜病变", "慢性CSC"],
    },
    "nAMD": {
        None: ["新生血管性年龄相关性黄斑变性", "湿性年龄相关性黄斑变性"],
        "classic": ["新生血管性年龄相关性黄斑变性（典型性）", "典型性湿性AMD"],
        "occult": ["新生血管性年龄相关性黄斑变性（隐匿性）", "隐匿性湿性AMD"],
        "mixed": ["新生血管性年龄相关性黄斑变性（混合性）", "混合性湿性AMD"],
    },
    "dryAMD": {
        None: ["干性年龄相关性黄斑变性", "干性AMD"],
        "drusen": ["干性AMD（玻璃膜疣型）", "干性年龄相关性黄斑变性（玻璃膜疣）"],
        "GA": ["干性AMD（地图样萎缩）", "地图样萎缩型干性AMD"],
    },
    "myopicCNV": {None: ["病理性近视脉络膜新生血管", "近视性CNV"]},
    "uveitis": {
        None: ["葡萄膜炎伴视网膜血管炎", "视网膜血管炎"],
        "posterior": ["后葡萄膜炎", "后葡萄膜炎伴视网膜血管炎"],
        "panuveitis": ["全葡萄膜炎", "全葡萄膜炎伴视网膜血管炎"],
        "VKH": ["Vogt-小柳-原田综合征", "VKH"],
    },
    "RAO": {
        None: ["视网膜动脉阻塞", "RAO"],
        "central": ["视网膜中央动脉阻塞", "CRAO"],
        "branch": ["视网膜分支动脉阻塞", "BRAO"],
    },
    "Coats": {
        None: ["Coats病"],
        "stage_2": ["Coats病（2期）", "Coats病2期"],
        "stage_3": ["Coats病（3期）", "Coats病3期"],
    },
    "normal": {None: ["眼底荧光造影未见明显异常", "FFA未见明显异常"]},
}
