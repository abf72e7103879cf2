"""The parser's lexicon: regular expressions for codes, attributes and cues, in English and Chinese.

Each table maps a label to patterns. ``Matcher`` joins a table into one alternation tried leftmost-first with
longer patterns first, which approximates leftmost-longest matching: "neovascularisation of the disc" wins over
"neovascularisation", "非增殖期" is not read as "增殖期". Patterns are case-insensitive unless they start with
``=`` (abbreviations such as ``MA``, ``PED``, ``DA``); ASCII words get letter boundaries that also work next to
Chinese characters (where ``\\b`` fails, because CJK characters count as word characters).

Finding labels are codes, plus: ``NULL`` (text to consume so that it triggers nothing, e.g. "retinal pigment
epithelium"), ``WEAK_LEAK`` (bare "leakage"/"渗漏": a code only when nothing more specific is in the clause)
and ``GROUP:<a>,<b>`` (an unspecific name: the first code when stated present, all codes when denied).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FINDING_PATTERNS: dict[str, list[str]] = {
    "ART_DELAY": [
        r"delayed (retinal )?arterial filling( front)?",
        r"delayed filling of the (retinal )?arter(y|ies)",
        r"(retarded|slow|sluggish) arterial filling",
        r"arterial filling (is |was )?(delayed|slow)",
        r"prolonged arm[- ]to[- ]retina( circulation)? time",
        r"(视网膜)?动脉充盈(迟缓|延迟|缓慢|时间延长)",
        r"臂[-－]?视网膜循环时间延长",
    ],
    "VEN_DELAY": [
        r"delayed (retinal )?venous filling",
        r"delayed filling of the (retinal )?veins?",
        r"prolonged (arteriovenous|arterio-venous|AV) transit( time)?",
        r"(slow|sluggish) venous (filling|return)",
        r"venous filling (is |was )?(delayed|slow)",
        r"(视网膜)?静脉(充盈|回流)(迟缓|延迟|缓慢)",
        r"动静脉(循环|通过)时间延长",
    ],
    "CHOR_FILL_DEFECT": [
        r"choroidal filling defects?",
        r"(patchy )?choroidal hypoperfusion",
        r"areas? of delayed choroidal filling",
        r"delayed choroidal filling",
        r"choroidal (non-?filling|filling delay)",
        r"脉络膜(充盈缺损|充盈迟缓区?|低灌注|充盈延迟)",
    ],
    "MA": [
        r"micro-?aneurysms?",
        r"=MAs?",
        r"微血管瘤(样点状强荧光)?",
        r"微动脉瘤",
    ],
    "HEME_BLOCK": [r"ha?emorrhag\w*", r"bleed(s|ing)?", r"出血"],
    "EXUDATE_BLOCK": [r"(hard )?exudates?", r"lipid deposits?", r"硬性渗出", r"硬渗", r"黄白色渗出"],
    "PIGMENT_BLOCK": [
        r"pigment(ary)? (clump\w*|block\w*|deposit\w*|proliferation|migration|hyperplasia)",
        r"hyperpigmentation",
        r"色素(遮蔽|遮挡|沉着|堆积|增殖|紊乱|脱失)",
    ],
    "NPA": [
        r"(capillary )?non-?perfusion( areas?| zones?)?",
        r"non-?perfused (areas?|retina)",
        r"capillary (drop-?out|closure)",
        r"=NPAs?",
        r"=CNP",
        r"ischa?emic (areas?|zones?)",
        r"(毛细血管)?无灌注区?",
        r"毛细血管闭塞区?",
    ],
    "FAZ_ENLARGED": [
        r"(enlarged|irregular|disrupted|widened)( and (irregular|enlarged))?( (enlarged|irregular))? (foveal avascular zone|FAZ)",
        r"enlargement of the (foveal avascular zone|FAZ)",
        r"(foveal avascular zone|FAZ) (is |was )?(enlarged|irregular|disrupted)",
        r"黄斑拱环(扩大|破坏|不完整|不规则|结构破坏)",
        r"中心凹无血管区(扩大|不规则)",
        r"黄斑无血管区扩大",
    ],
    "IRMA": [
        r"intra-?retinal microvascular abnormalit(y|ies)",
        r"=IRMAs?( segments?)?",
        r"视网膜内微血管异常",
    ],
    "VENOUS_BEADING": [
        r"venous beading",
        r"beading of the veins",
        r"beaded veins?",
        r"静脉(呈)?串珠(样改变|样|状)?",
    ],
    "VEIN_DILATED_TORTUOUS": [
        r"(dilated|engorged)( and)? tortuous (retinal )?veins?",
        r"tortuous( and)? (dilated|engorged) (retinal )?veins?",
        r"venous (dilatation|dilation|tortuosity|engorgement)( and (tortuosity|dilatation|dilation))?",
        r"veins (are|were) (dilated|tortuous)( and (dilated|tortuous))?",
        r"(视网膜)?静脉(迂曲扩张|扩张迂曲|迂曲|扩张|怒张)",
    ],
    "COLLATERAL": [
        r"collateral( vessels?| channels?|s)?",
        r"shunt vessels?",
        r"optociliary shunts?",
        r"侧支(循环|血管)(血管)?",
    ],
    "NVD": [
        r"=NVD",
        r"=NV (at|on|of) the (optic )?disc",
        r"neovasculari[sz]ation (of|at|on) the (optic )?disc",
        r"(optic )?disc neovasculari[sz]ation",
        r"new vessels (at|on) the (optic )?disc",
        r"视(盘|乳头)(表面)?新生血管",
        r"视(盘|乳头)(表面|上|前|处)?(可见|见)新生血管",
    ],
    "NVE": [
        r"=NVE",
        r"=NV",
        r"neovasculari[sz]ation elsewhere",
        r"retinal neovasculari[sz]ation",
        r"neovascular (fronds?|tufts?)",
        r"new vessel (complex(es)?|fronds?)",
        r"new vessels elsewhere",
        r"sea-?fans?",
        r"视网膜新生血管(膜)?",
        r"新生血管(芽|团)",
    ],
    "TELANGIECTASIA": [
        r"telangiecta\w*( vessels?)?",
        r"light-?bulb aneurysms?",
        r"毛细血管扩张",
        r"灯泡样(血管瘤|动脉瘤)",
        r"血管扩张",
    ],
    "MACROANEURYSM": [r"(retinal )?(arterial )?macro-?aneurysms?", r"(视网膜)?大动脉瘤", r"动脉瘤样扩张"],
    "LEAK_FOCAL": [
        r"focal (leakage|leaks?|hyperfluorescence)",
        r"focal areas? of leakage",
        r"locali[sz]ed leakage",
        r"局灶性?(荧光素?)?渗漏",
        r"局限性(荧光素?)?渗漏",
        r"局部(荧光素?)?渗漏",
        r"点状渗漏",
    ],
    "LEAK_DIFFUSE": [
        r"diffuse (hyperfluorescent )?leak(age|s)?",
        r"diffusely leaking( capillaries)?",
        r"diffuse (macular )?o?edema",
        r"弥漫性?(荧光素|强荧光)?渗漏",
        r"弥漫性强荧光",
        r"弥漫性黄斑水肿",
    ],
    "CME": [
        r"cystoid macular o?edema",
        r"=CME",
        r"petaloid( pattern| pooling| hyperfluorescence)?",
        r"flower-?petal( pooling| pattern)?",
        r"cystoid (spaces|pooling|o?edema)",
        r"黄斑囊样水肿",
        r"囊样水肿",
        r"花瓣(状|样)(荧光积存|积存|强荧光)?",
    ],
    "CSC_LEAK": [
        r"(expansile )?((ink-?blot(-pattern)?|smoke-?stack) )?leak(age)? points?",
        r"points? of leakage",
        r"(ink-?blot|smoke-?stack) (pattern|leak(age)?)",
        r"expansile dots?",
        r"(墨渍样|墨迹样|炊烟状|烟囱状)?(荧光素|强荧光)?渗漏点",
        r"(墨渍样|墨迹样|炊烟状|烟囱状)(渗漏|扩散)",
    ],
    "POOL_SRD": [
        r"(serous|neurosensory|sensory|exudative) (retinal )?detachments?",
        r"=SRDs?",
        r"subretinal fluid",
        r"神经上皮(层)?脱离(区)?(荧光积存)?",
        r"浆液性视网膜脱离",
        r"视网膜下积液",
    ],
    "POOL_PED": [
        r"(retinal )?pigment epitheli(al|um) detachments?",
        r"=PEDs?",
        r"=RPE detachments?",
        r"色素上皮(层)?脱离(荧光积存)?",
    ],
    "CNV_CLASSIC": [
        r"classic (choroidal neovasculari[sz]ation|=CNV)",
        r"well-?(demarcated|defined) (choroidal neovasculari[sz]ation|=CNV)",
        r"(典型性|经典型|典型)(脉络膜新生血管|CNV)",
    ],
    "CNV_OCCULT": [
        r"occult (choroidal neovasculari[sz]ation|=CNV)",
        r"fibrovascular (=PED|pigment epitheli(al|um) detachment)",
        r"late leakage of (an )?(undetermined|unknown) source",
        r"隐匿性?(脉络膜新生血管|CNV)",
        r"纤维血管性色素上皮脱离",
        r"来源不明的?(迟发性|晚期)渗漏",
    ],
    "VESSEL_WALL_STAIN": [
        r"(vessel|vascular|venous|vein|arterial|perivenous) wall (staining|leakage|hyperfluorescence)",
        r"staining of the (vessel|venous|vein) walls?",
        r"perivascular (staining|sheathing|leakage)",
        r"periphlebitis",
        r"(retinal )?vasculitis",
        r"(静脉|动脉)?(管壁|血管壁)(荧光)?(着染|渗漏)",
        r"血管炎",
    ],
    "CAPILLARY_LEAK": [
        r"((fern-?like|diffuse) )?capillary (bed )?leak(age|s)?",
        r"fern-?like (leakage|pattern|hyperfluorescence)",
        r"(羊齿状|蕨样|蕨状)?毛细血管(弥漫性)?渗漏",
        r"(羊齿状|蕨样)渗漏",
    ],
    "PINPOINT_LEAKS": [
        r"(multiple |multifocal )?pin-?point leak(s|age)?",
        r"多(发|灶性|处)(点状|针尖样|针尖状)渗漏点?",
        r"针尖(样|状)渗漏点?",
    ],
    "DISC_LEAK": [
        r"(optic )?disc (leakage|hyperfluorescence|staining|leak)",
        r"leak\w* (from|at|of) the (optic )?disc",
        r"hyperfluorescence of the (optic )?disc",
        r"(optic )?disc (is|was) hyperfluorescent",
        r"视(盘|乳头)(荧光素)?(渗漏|强荧光|着染|高荧光)",
    ],
    "STAIN_SCAR": [
        r"((disciform|fibrous|fibrotic) )?scar( tissue)? staining",
        r"staining of (an? |the )?(fibrous |disciform )?scars?",
        r"disciform scars?",
        r"scars?",
        r"(盘状)?瘢痕(组织)?着染",
        r"盘状瘢痕",
        r"瘢痕",
    ],
    "DRUSEN": [r"(hyperfluorescent )?drusen", r"druse", r"玻璃膜疣"],
    "WINDOW_DEFECT": [
        r"window defects?",
        r"transmission defects?",
        r"transmitted (hyper)?fluorescence",
        r"transmission hyperfluorescence",
        r"透见荧光",
        r"窗样(缺损|透见荧光|强荧光)",
    ],
    "LASER_SCARS": [
        r"((PRP|panretinal photocoagulation|grid|focal) )?laser (photocoagulation )?(scars?|spots?|burns?|marks?)",
        r"photocoagulation (scars?|burns?)",
        r"=PRP",
        r"panretinal photocoagulation",
        r"(全视网膜光凝|PRP|格栅样|局灶性)?激光(光凝)?斑",
        r"光凝斑",
        r"激光瘢痕",
        r"全视网膜光凝",
    ],
    "NORMAL": [
        r"no abnormal (hyper|hypo)?fluorescence",
        r"no (fluorescein )?angiographic abnormalit(y|ies)",
        r"normal (fundus fluorescein )?angiogra(m|phy)",
        r"normal (study|examination|=FFA)",
        r"within normal limits",
        r"未见(明显)?异常(荧光)?",
        r"荧光(造影)?未见(明显)?异常",
    ],
    "NULL": [
        r"retinal pigment epitheli(um|al)",
        r"=RPE",
        r"色素上皮(?!(层)?脱离)",
        r"foveal avascular zone",
        r"=FAZ",
        r"黄斑拱环",
        r"choroidal flush",
        r"arm[- ]?(to[- ])?retina(l)?( circulation)? time",
        r"diabetic macular o?edema",
        r"糖尿病(性)?黄斑水肿",
    ],
    "WEAK_LEAK": [r"leak(age|s|ing|y)?", r"(荧光素?)?渗漏"],
    "GROUP:CNV_CLASSIC,CNV_OCCULT": [r"=CNV", r"choroidal neovasculari[sz]ation", r"脉络膜新生血管"],
    "GROUP:LEAK_DIFFUSE,CME": [r"macular o?edema", r"oedema", r"edema", r"黄斑(区)?水肿", r"水肿"],
    "GROUP:NVE,NVD": [r"neovasculari[sz]ation", r"new vessels?", r"新生血管"],
}

LOCATION_PATTERNS: dict[str, list[str]] = {
    "fovea": [r"(sub)?fovea(l)?", r"黄斑中心凹", r"中心凹(?![旁周])", r"黄斑中心"],
    "parafovea": [r"parafovea(l)?( region)?", r"juxtafoveal", r"中心凹旁", r"旁中心凹"],
    "perifovea": [r"perifovea(l)?( region)?", r"中心凹周围"],
    "macula": [r"macula(r)?( area| region)?", r"黄斑区?"],
    "peripapillary": [
        r"peripapillary( region| retina)?",
        r"around the (optic )?disc",
        r"视(盘|乳头)(周围|旁|周)",
    ],
    "disc": [r"(optic )?disc", r"optic nerve head", r"视(盘|乳头)"],
    "posterior_pole": [r"posterior pole", r"后极部?"],
    "arcade": [r"(vascular )?arcades?", r"血管弓"],
    "mid_periphery": [
        r"mid-?peripher(y|al)( retina)?",
        r"中周部?",
        r"周边部(?!远)",
        r"peripher(y|al retina)",
    ],
    "far_periphery": [r"far[- ]peripher(y|al)( retina)?", r"远周边部?"],
    "superotemporal": [r"supero-?temporal", r"upper temporal", r"颞上(方)?"],
    "inferotemporal": [r"infero-?temporal", r"lower temporal", r"颞下(方)?"],
    "superonasal": [r"supero-?nasal", r"upper nasal", r"鼻上(方)?"],
    "inferonasal": [r"infero-?nasal", r"lower nasal", r"鼻下(方)?"],
    "superior": [r"superior(ly)?", r"(?<![颞鼻])上方"],
    "inferior": [r"inferior(ly)?", r"(?<![颞鼻])下方"],
    "temporal": [r"temporal(ly)?", r"颞侧"],
    "nasal": [r"nasal(ly)?", r"鼻侧"],
}

PHASE_PATTERNS: dict[str, list[str]] = {
    "choroidal": [
        r"choroidal( flush)? phase",
        r"pre-?arterial( \(choroidal\))? phase",
        r"(造影)?脉络膜(充盈)?期",
        r"脉络膜前期",
    ],
    "arterial": [r"arterial phase", r"(造影|视网膜)?动脉期"],
    "early_AV": [
        r"early (arterio-?venous|=AV)( \(laminar\))? phase",
        r"(arterio-?venous|=AV|transit|capillary|laminar) phase",
        r"early (phase|frames|images)",
        r"动静脉(期)?早期",
        r"早期动静脉期",
        r"动静脉期",
        r"(造影)?早期",
    ],
    "late_AV": [
        r"late (arterio-?venous|=AV) phase",
        r"full venous phase",
        r"动静脉(期)?晚期",
        r"晚期动静脉期",
    ],
    "venous": [r"venous phase", r"(造影|全)?静脉期"],
    "mid": [
        r"mid(dle)?[- ]phase",
        r"mid \(recirculation\) phase",
        r"recirculation phase",
        r"(造影)?中期",
        r"再循环期",
    ],
    "late": [r"late (phase|frames|images|stage)", r"(造影)?(晚期|后期)"],
}

COUNT_PATTERNS: dict[str, list[str]] = {
    "single": [r"(a )?single", r"solitary", r"(one )?isolated", r"单个", r"孤立(的)?", r"单发", r"一处"],
    "few": [r"(a )?few", r"several", r"occasional", r"少量", r"数个", r"少许", r"几个", r"个别"],
    "multiple": [r"multiple", r"many", r"多个", r"多处", r"多发"],
    "numerous": [r"numerous", r"innumerable", r"countless", r"abundant", r"大量", r"密集(的)?", r"众多"],
}
SEVERITY_PATTERNS: dict[str, list[str]] = {
    "mild": [r"mild(ly)?", r"轻度"],
    "moderate": [r"moderate(ly)?", r"中度"],
    "severe": [r"severe(ly)?", r"marked(ly)?", r"重度", r"明显的"],
}
HEDGE_PATTERNS = {
    "suspected": [
        r"suspected",
        r"suspicious( of| for)?",
        r"possible",
        r"possibly",
        r"probable",
        r"probably",
        r"questionable",
        r"likely",
        r"cannot be excluded",
        r"可疑",
        r"疑似",
        r"可能(为)?",
        r"考虑为?",
        r"不除外",
    ]
}
EVOLUTION_PATTERNS: dict[str, list[str]] = {
    "tracks_background": [
        r"(track|parallel|follow)\w* the (background|choroid|choroidal background)",
        r"背景荧光同步",
        r"随(脉络膜)?背景荧光",
    ],
    "increasing": [
        r"increas\w*",
        r"progressive\w*",
        r"enlarg\w*",
        r"expand\w*",
        r"intensif\w*",
        r"grow\w*",
        r"more intense",
        r"增强",
        r"扩大",
        r"加重",
        r"渐强",
        r"增多",
    ],
    "fading": [
        r"fad(e|es|ed|ing)",
        r"diminish\w*",
        r"decreas\w*",
        r"wash(es|ing)? out",
        r"减弱",
        r"变淡",
        r"消退",
        r"渐弱",
        r"淡化",
    ],
    "stable": [
        r"stable",
        r"unchanged",
        r"constant",
        r"persist\w*",
        r"remain\w* the same",
        r"稳定",
        r"不变",
        r"无明显变化",
        r"无变化",
        r"持续存在",
    ],
}
NEGATION_PATTERNS = {
    "pre": [
        r"no",
        r"not",
        r"without",
        r"absence of",
        r"absent",
        r"free of",
        r"negative for",
        r"nor",
        r"neither",
        r"no evidence of",
        r"ruled out",
        r"rules? out",
        r"未见",
        r"未发现",
        r"未显示",
        r"没有",
        r"无",
        r"不伴",
        r"排除",
    ],
}
RESET_PATTERNS = {
    "reset": [
        r"in addition",
        r"additionally",
        r"also",
        r"elsewhere",
        r"other findings",
        r"另见",
        r"此外",
        r"另外",
    ]
}

# Where a denial stops: a contrast word, or a comma that opens a new positive statement.
SCOPE_BREAK = re.compile(
    r"(?<![A-Za-z])(?:but|however|although|though|whereas|while|yet|except)(?![A-Za-z])|但|然而|"
    r"[,，]\s*(?:(?i:with|and there|there (?:is|are)|可见|见|伴|呈|另见))|[,，][^,，]{0,10}?(?<![未无])(?:可见|见|呈)"
)
POST_NEGATION = re.compile(
    r"^\s*(?:(?:is|are|was|were)\s+)?(?:not\s+(?:seen|observed|detected|identified|present|evident|visible|noted|"
    r"demonstrated)|absent)(?![A-Za-z])|^\s*(?:阴性|不明显|未显示)",
    re.IGNORECASE,
)

# What may stand between a clause start and a phase name for that name to head the clause ("In the late
# phase, ...", "造影晚期：...", "OD: Late phase: ...").
HEADING_LEAD = re.compile(r"^(?:[^:：]{0,24}[:：])?[\s\x00]*(?:(?i:in|during|at|on|by)(?:\s+the)?\s+|造影)?$")

_NUMBER = r"(\d+(?:\.\d+)?)"
EXTENT_PATTERNS: dict[str, re.Pattern[str]] = {
    "DA": re.compile(_NUMBER + r"\s*个?\s*(?:DA(?![A-Za-z])|(?i:disc areas?)|视盘面积)"),
    "DD": re.compile(_NUMBER + r"\s*个?\s*(?:DD(?![A-Za-z])|PD(?![A-Za-z])|(?i:disc diameters?)|视盘直径)"),
    "clock_hours": re.compile(_NUMBER + r"\s*个?\s*(?:(?i:clock[- ]hours?)|钟点)"),
    "px": re.compile(_NUMBER + r"\s*(?:px(?![A-Za-z])|(?i:pixels?)|像素)"),
}
ARM_RETINA = re.compile(
    r"(?:(?i:arm[- ]?(?:to[- ])?retina(?:l)?(?: circulation)? time)|A-?R(?:T| time)|臂[-－—]?视网膜(?:循环)?时间)"
    r"[^\d。；;.]{0,16}?" + _NUMBER + r"\s*(?:s|sec|secs|seconds|秒)(?![A-Za-z])"
)
EYE_PATTERNS = {
    "OD": [r"=OD", r"right eye", r"=RE", r"右眼"],
    "OS": [r"=OS", r"left eye", r"=LE", r"左眼"],
    "OU": [r"=OU", r"both eyes", r"双眼"],
}
IMPRESSION = re.compile(
    r"(?:(?i:impression|diagnosis|diagnoses|conclusion|assessment)|诊断|印象|结论|提示)\s*[:：]"
    r"|(?:(?<=[。；\n])|^)\s*(?:考虑|提示|(?i:consistent with|suggestive of|findings suggest))"
)

# Diagnoses: mentions, then per code the grade words looked for around each mention.
DIAGNOSIS_PATTERNS: dict[str, list[str]] = {
    "DR": [r"diabetic retinopathy", r"=NPDR", r"=PDR", r"=DR", r"糖尿病(性)?视网膜病变"],
    "DME": [r"diabetic macular o?edema", r"=DME", r"=CSME", r"糖尿病(性)?黄斑水肿"],
    "BRVO": [r"branch retinal vein occlusion", r"=BRVO", r"视网膜分支静脉(阻塞|栓塞)"],
    "CRVO": [r"central retinal vein occlusion", r"=CRVO", r"视网膜中央静脉(阻塞|栓塞)"],
    "CSC": [
        r"central serous (chorio)?retinopathy",
        r"=CSCR?",
        r"=CSR",
        r"中心性浆液性脉络膜视网膜病变",
        r"中浆",
    ],
    "nAMD": [
        r"(neovascular|wet|exudative) (AMD|age-related macular degeneration)",
        r"=nAMD",
        r"=wAMD",
        r"(新生血管性|湿性)(年龄相关性黄斑变性|AMD)",
    ],
    "dryAMD": [
        r"(dry|atrophic) (AMD|age-related macular degeneration)",
        r"geographic atrophy",
        r"干性(年龄相关性黄斑变性|AMD)",
    ],
    "myopicCNV": [
        r"myopic (=CNV|choroidal neovasculari[sz]ation)",
        r"(病理性近视|近视性)(脉络膜新生血管|CNV)",
    ],
    "uveitis": [
        r"(pan|posterior |anterior |intermediate )?uveitis",
        r"(retinal )?vasculitis",
        r"=VKH",
        r"vogt-koyanagi-harada( disease| syndrome)?",
        r"(后|全|中间)?葡萄膜炎",
        r"视网膜血管炎",
        r"vogt-小柳-原田(综合征|病)?",
        r"小柳原田(综合征|病)?",
    ],
    "RAO": [
        r"(central |branch )?retinal artery occlusion",
        r"=CRAO",
        r"=RAO",
        r"=BRAO",
        r"视网膜(中央|分支)?动脉(阻塞|栓塞)",
    ],
    "Coats'": [r"coats'?( disease)?", r"coats病"],
    "normal": [
        r"normal (fundus fluorescein )?angiogra(m|phy)",
        r"normal =FFA",
        r"(眼底荧光造影|FFA|造影)未见(明显)?异常",
        r"未见明显异常",
    ],
}
GRADE_PATTERNS: dict[str, dict[str, list[str]]] = {
    "DR": {
        "PDR": [r"(?<!non-)(?<!non)(?<!non )proliferative", r"=PDR", r"(?<!非)增殖(期|性)"],
        "severe_NPDR": [r"severe", r"重度"],
        "moderate_NPDR": [r"moderate", r"中度"],
        "mild_NPDR": [r"mild", r"轻度"],
    },
    "DME": {"focal": [r"focal", r"局灶"], "diffuse": [r"diffuse", r"弥漫"], "cystoid": [r"cystoid", r"囊样"]},
    "BRVO": {
        "non_ischemic": [r"non-?isch(a)?emic", r"非缺血"],
        "ischemic": [r"isch(a)?emic", r"(?<!非)缺血"],
    },
    "CRVO": {
        "non_ischemic": [r"non-?isch(a)?emic", r"非缺血"],
        "ischemic": [r"isch(a)?emic", r"(?<!非)缺血"],
    },
    "CSC": {"acute": [r"acute", r"急性"], "chronic": [r"chronic", r"慢性"]},
    "nAMD": {
        "mixed": [r"mixed", r"混合"],
        "classic": [r"classic", r"典型", r"经典"],
        "occult": [r"occult", r"隐匿"],
    },
    "dryAMD": {"drusen": [r"drusen", r"玻璃膜疣"], "GA": [r"geographic atrophy", r"=GA", r"地图样萎缩"]},
    "uveitis": {
        "VKH": [r"=VKH", r"vogt-koyanagi-harada", r"vogt-小柳-原田", r"小柳原田"],
        "panuveitis": [r"panuveitis", r"全葡萄膜炎"],
        "posterior": [r"posterior uveitis", r"后葡萄膜炎"],
    },
    "RAO": {"central": [r"central", r"=CRAO", r"中央"], "branch": [r"branch", r"=BRAO", r"分支"]},
    "Coats": {"stage_3": [r"stage (3|III)", r"(3|III)期"], "stage_2": [r"stage (2|II)(?!I)", r"(2|II)期"]},
}
DIAGNOSIS_PATTERNS["Coats"] = DIAGNOSIS_PATTERNS.pop("Coats'")


_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
_OPEN_GROUP = re.compile(r"(?<!\\)\((?!\?)")


def _prepare(pattern: str) -> str:
    """Make groups non-capturing, choose case handling, add ASCII letter boundaries.

    When the pattern starts with a plain character, that character is written first (as ``[mM]`` or a
    literal) so that the regex engine can skip the alternative after one comparison: this is what keeps one
    alternation of a few hundred patterns fast.
    """
    sensitive = pattern.startswith("=")
    raw = pattern.removeprefix("=")
    body = _OPEN_GROUP.sub("(?:", raw)
    # '=CNV' inside a pattern: that abbreviation stays case-sensitive while the rest is not
    body = re.sub(r"=([A-Za-z]+)", r"(?-i:\1)", body)
    # letter boundaries only on an end that is ASCII: CJK words may touch Latin ones ("中度NPDR")
    first, last = raw.lstrip("(")[:1], raw.rstrip(")?*+")[-1:]
    trail = "" if _CJK.match(last) else "(?![A-Za-z])"
    head, rest = body[:1], body[1:]
    if head.isalpha() and rest[:1] not in ("?", "*", "+", "{"):
        if _CJK.match(head):
            return f"{head}(?:{rest}){trail}"
        cls = head if sensitive else f"[{head.lower()}{head.upper()}]"
        rest = rest if sensitive else f"(?i:{rest})"
        return f"{cls}(?<![A-Za-z].){rest}{trail}"
    lead = "" if _CJK.match(first) else "(?<![A-Za-z])"
    return f"{lead}(?:{body if sensitive else f'(?i:{body})'}){trail}"


def _expand(pattern: str, depth: int = 0) -> list[str]:
    """Spell out a leading group ("(hard )?exudates?" -> "hard exudates?", "exudates?") so that every variant
    starts with a plain character and gets the fast first-character skip of ``_prepare``."""
    sensitive = "=" if pattern.startswith("=") else ""
    raw = pattern.removeprefix("=")
    if not raw.startswith("(") or raw.startswith("(?") or depth > 3:
        return [pattern]
    level, close, splits = 0, -1, []
    for i, ch in enumerate(raw):
        if ch == "(" and raw[i - 1 : i] != "\\":
            level += 1
        elif ch == ")" and raw[i - 1 : i] != "\\":
            level -= 1
            if level == 0:
                close = i
                break
        elif ch == "|" and level == 1:
            splits.append(i)
    rest = raw[close + 1 :]
    optional = rest.startswith("?")
    rest = rest[1:] if optional else rest
    if close < 0 or rest[:1] in ("*", "+", "{", "?"):
        return [pattern]
    edges = [0, *splits, close]
    variants = [raw[a + 1 : b] + rest for a, b in zip(edges, edges[1:], strict=False)] + (
        [rest] if optional else []
    )
    return [x for v in variants if v for x in _expand(sensitive + v, depth + 1)]


def _width(pattern: str) -> tuple[int, int]:
    """(shortest, longest) text the pattern can match: the leftmost-longest ordering key."""
    lo, hi = re._parser.parse(pattern).getwidth()  # type: ignore[attr-defined]
    return int(lo), int(min(hi, 10_000))


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    label: str


_STARTS = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]|[^\x00-\x7f]")
_LEADING_LOOKBEHIND = re.compile(r"^(?:\(\?<[!=][^)]*\))+")


def _start_chars(pattern: str) -> set[str] | None:
    """The characters a pattern's match can begin with, or None when that is not a plain character."""
    raw = _LEADING_LOOKBEHIND.sub("", pattern.removeprefix("="))
    head = raw[:1]
    if not head.isalnum() or raw[1:2] in ("?", "*", "{"):
        return None
    return {head} if pattern.startswith("=") or _CJK.match(head) else {head.lower(), head.upper()}


class Matcher:
    """One table (label -> patterns) matched leftmost-first, longer patterns first (~leftmost-longest).

    Candidate starts are word starts and CJK characters; at each, only the patterns that can begin with that
    character are tried (one small compiled alternation per character), which keeps a few hundred patterns
    fast on long reports.
    """

    def __init__(self, table: dict[str, list[str]]) -> None:
        entries = [(v, label) for label, patterns in table.items() for p in patterns for v in _expand(p)]
        entries.sort(key=lambda e: tuple(-w for w in _width(_prepare(e[0]))))
        self.labels = [label for _, label in entries]
        by_char: dict[str, list[int]] = {}
        anywhere: list[int] = []
        for i, (pattern, _) in enumerate(entries):
            chars = _start_chars(pattern)
            if chars is None:
                anywhere.append(i)
            for ch in chars or ():
                by_char.setdefault(ch, []).append(i)
        compiled: dict[tuple[int, ...], re.Pattern[str]] = {}

        def build(indices: list[int]) -> re.Pattern[str]:
            key = tuple(sorted(set(indices) | set(anywhere)))
            if key not in compiled:
                # an empty marker group at the end names the alternative without hiding its first character
                compiled[key] = re.compile("|".join(f"{_prepare(entries[i][0])}(?P<g{i}>)" for i in key))
            return compiled[key]

        self._by_char = {ch: build(ix) for ch, ix in by_char.items()}
        self._anywhere = build([]) if anywhere else None
        ascii_keys = "".join(sorted(re.escape(c) for c in by_char if c.isascii()))
        other_keys = "".join(sorted(c for c in by_char if not c.isascii()))
        starts = [
            f"(?<![A-Za-z0-9])[{ascii_keys}]" if ascii_keys else "",
            f"[{other_keys}]" if other_keys else "",
        ]
        self._starts = _STARTS if anywhere else re.compile("|".join(x for x in starts if x) or "(?!)")

    def find(self, text: str) -> list[Match]:
        out: list[Match] = []
        pos = 0
        for start in self._starts.finditer(text):
            i = start.start()
            if i < pos:
                continue
            regex = self._by_char.get(text[i], self._anywhere)
            m = regex.match(text, i) if regex is not None else None
            if m is not None and m.end() > i:
                assert m.lastgroup is not None
                out.append(Match(i, m.end(), self.labels[int(m.lastgroup[1:])]))
                pos = m.end()
        return out
