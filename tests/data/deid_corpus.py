"""A generated corpus for the de-identification tests: planted identifiers inside realistic FFA reports.

``planted_reports`` writes reports with the simulator's report writer (``ffasora.findings``, English and
Chinese) and plants identifiers of 16 categories in them: at the start, in the middle and at the end, with and
without labels and separators. Every choice comes from a seeded generator, so the corpus is the same on every
run and nothing big is committed. ``clean_reports`` gives reports with no identifier: the writer's, in both
languages, and hand-written ones in the styles hospitals use.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from stdnum.cn import ric
from stdnum.us import ssn

from ffasora.findings import write_report
from ffasora.findings.sampling import random_findings

FIRST_EN = [
    "John",
    "Maria",
    "Aisha",
    "Olga",
    "Pedro",
    "Liam",
    "Sven",
    "Priya",
    "Grace",
    "Tomasz",
    "Yuki",
    "Amara",
]
LAST_EN = [
    "Whitfield",
    "Garcia",
    "Okafor",
    "Ivanova",
    "O'Brien",
    "Nakamura",
    "Kowalski",
    "Dubois",
    "Patel",
    "Lindqvist",
]
TITLES = ["Mr.", "Mrs", "Ms.", "Dr.", "Prof.", "Miss", "Dr"]
NAMES_ZH = [
    "张伟",
    "王秀英",
    "李明",
    "刘洋",
    "陈静",
    "杨帆",
    "赵磊",
    "周杰",
    "吴敏",
    "欧阳娜",
    "孙丽",
    "郭强",
]
STREETS = ["Baker Street", "Elm Road", "Harbour View Avenue", "Mill Lane", "Sunset Blvd", "Kings Road"]
ROADS_ZH = [
    "北京市朝阳区建国路{n}号",
    "上海市浦东新区世纪大道{n}号",
    "广东省深圳市南山区科技园路{n}号",
    "浙江省杭州市西湖区文三路{n}号",
    "四川省成都市武侯区人民南路{n}号",
]
REGIONS_CN = ["110105", "310115", "440305", "330106", "510107"]
MONTHS = ["January", "Feb", "March", "April", "Sept", "Nov", "December"]
ZH_DIGITS = "〇一二三四五六七八九"


@dataclasses.dataclass(frozen=True)
class Planted:
    """One planted identifier: its category, the phrase planted and the values that must not survive."""

    category: str
    phrase: str
    values: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PlantedReport:
    text: str
    lang: str
    planted: tuple[Planted, ...]


def _zh_number(n: int) -> str:
    """1..31 in Chinese numerals (三, 十二, 二十一)."""
    tens, ones = divmod(n, 10)
    return ("" if tens == 0 else ("十" if tens == 1 else ZH_DIGITS[tens] + "十")) + (
        ZH_DIGITS[ones] if ones else ""
    )


def resident_id(rng: np.random.Generator, want_x: bool) -> str:
    """A valid 18-digit Chinese resident id (region, birth date, sequence, check digit), ending in X if asked."""
    for _ in range(10_000):
        born = f"{rng.integers(1960, 2010)}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}"
        body = f"{REGIONS_CN[rng.integers(len(REGIONS_CN))]}{born}{rng.integers(0, 1000):03d}"
        number = body + ric.calc_check_digit(body + "0")  # stdnum takes the number with a check digit slot
        if (number.endswith("X")) == want_x and ric.is_valid(number):
            return number
    raise AssertionError("no valid resident id drawn")


def social_security(rng: np.random.Generator) -> str:
    for _ in range(10_000):
        number = f"{rng.integers(100, 700):03d}-{rng.integers(10, 100):02d}-{rng.integers(1000, 10000):04d}"
        if ssn.is_valid(number):
            return number
    raise AssertionError("no valid social security number drawn")


def _plants(rng: np.random.Generator, k: int) -> list[Planted]:
    """One identifier of each category, its form chosen by ``k`` and the generator."""
    pick = lambda options: options[k % len(options)]  # noqa: E731
    first, last = pick(FIRST_EN), LAST_EN[(k * 3) % len(LAST_EN)]
    zh = NAMES_ZH[k % len(NAMES_ZH)]
    zh2 = NAMES_ZH[(k + 5) % len(NAMES_ZH)]
    y, m, d = int(rng.integers(1990, 2026)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    mobile = f"1{rng.choice([3, 5, 8])}{rng.integers(0, 10)}{rng.integers(10**7, 10**8)}"
    mrn = f"{rng.integers(10**6, 10**8)}"
    house = int(rng.integers(1, 300))
    age = int(rng.integers(90, 104))
    number_zh = int(rng.integers(1, 200))
    cid = resident_id(rng, want_x=k % 3 == 0)
    social = social_security(rng)
    us_phone = f"(212) {rng.integers(200, 999)}-{rng.integers(1000, 9999)}"
    uk_phone = f"+44 20 7{rng.integers(100, 999)} {rng.integers(1000, 9999)}"
    zh_date = f"{''.join(ZH_DIGITS[int(c)] for c in str(y))}年{_zh_number(m)}月{_zh_number(d)}日"
    ip = f"10.{rng.integers(0, 255)}.{rng.integers(0, 255)}.{rng.integers(1, 255)}"
    zip_code = f"CA {rng.integers(90000, 96000)}"
    plate = f"{pick(['京', '沪', '粤', '浙'])}{pick(['A', 'B', 'C'])}{rng.integers(10000, 99999)}"
    return [
        Planted(
            "name_en",
            pick(
                [
                    f"{pick(TITLES)} {first} {last}",
                    f"Patient {first} {last}",
                    f"Patient: {first} {last}",
                    f"Name: {last}, {first}",
                    f"referred by Dr {first} {last}",
                    f"Signed: {first} {last}",
                ]
            ),
            (first, last),
        ),
        Planted(
            "name_zh",
            pick(
                [
                    f"患者{zh}",
                    f"姓名：{zh}",
                    f"主治医生：{zh}",
                    f"{zh}，男，",
                    f"患者 {zh} 复查",
                    f"检查医生{zh}",
                ]
            ),
            (zh,),
        ),
        Planted(
            "name_zh_untagged",
            pick([f"{zh2}复查", f"{zh2}女士", f"由{zh2}医生检查", f"家属{zh2}陪同"]),
            (zh2,),
        ),
        Planted(
            "national_id_cn", pick([f"身份证号：{cid}", f"身份证{cid}", cid, f"ID {cid}"]), (cid, cid[:17])
        ),
        Planted("ssn_us", pick([f"SSN {social}", f"social security number {social}", social]), (social,)),
        Planted(
            "phone_cn",
            pick([mobile, f"手机{mobile}", f"电话：{mobile}", f"+86 {mobile}", f"tel {mobile}"]),
            (mobile,),
        ),
        Planted(
            "phone_intl",
            pick([us_phone, uk_phone, f"phone: {us_phone}", f"联系电话 {uk_phone}"]),
            (pick([us_phone, uk_phone, us_phone, uk_phone]),),
        ),
        Planted(
            "date_en",
            pick(
                [
                    f"{y}-{m:02d}-{d:02d}",
                    f"{d:02d}/{m:02d}/{y}",
                    f"{d} {pick(MONTHS)} {y}",
                    f"{pick(MONTHS)} {d}, {y}",
                    f"DOB: {d}.{m}.{y}",
                ]
            ),
            (
                pick(
                    [
                        f"{y}-{m:02d}-{d:02d}",
                        f"{d:02d}/{m:02d}/{y}",
                        f"{d} {pick(MONTHS)} {y}",
                        f"{pick(MONTHS)} {d}, {y}",
                        f"{d}.{m}.{y}",
                    ]
                ),
            ),
        ),
        Planted(
            "date_zh",
            pick(
                [
                    f"{y}年{m}月{d}日",
                    zh_date,
                    f"检查日期：{y}年{m:02d}月{d:02d}日",
                    f"{m}月{d}日",
                    zh_date + "复查",
                ]
            ),
            (pick([f"{y}年{m}月{d}日", zh_date, f"{y}年{m:02d}月{d:02d}日", f"{m}月{d}日", zh_date]),),
        ),
        Planted(
            "date_relative",
            pick(["yesterday", "last Tuesday", "3 days ago", "昨天", "上周三", "星期五"]),
            (pick(["yesterday", "last Tuesday", "3 days ago", "昨天", "上周三", "星期五"]),),
        ),
        Planted(
            "address_en",
            pick(
                [
                    f"{house} {pick(STREETS)}",
                    f"lives at {house}B {pick(STREETS)}",
                    f"Address: {house} {pick(STREETS)}, London",
                    "SW1A 1AA",
                    zip_code,
                ]
            ),
            (
                pick(
                    [
                        f"{house} {pick(STREETS)}",
                        f"{house}B {pick(STREETS)}",
                        f"{house} {pick(STREETS)}",
                        "SW1A 1AA",
                        zip_code,
                    ]
                ),
            ),
        ),
        Planted(
            "address_zh",
            pick([pick(ROADS_ZH).format(n=number_zh), "住址：" + pick(ROADS_ZH).format(n=number_zh)]),
            (pick(ROADS_ZH).format(n=number_zh),),
        ),
        Planted(
            "record_number",
            pick(
                [
                    f"MRN: {mrn}",
                    f"住院号 {mrn}",
                    f"Hospital No. {mrn}",
                    f"病历号：{mrn}",
                    f"accession #{mrn}",
                    f"H{mrn}",
                ]
            ),
            (mrn,),
        ),
        Planted(
            "age_over_89", pick([f"{age}-year-old", f"aged {age}", f"{age}岁", f"{age} yo"]), (str(age),)
        ),
        Planted(
            "email_url_ip",
            pick([f"{first.lower()}.{last.lower()}@clinic.org", f"http://pacs.example.org/study/{mrn}", ip]),
            (pick([f"{first.lower()}.{last.lower()}@clinic.org", f"pacs.example.org/study/{mrn}", ip]),),
        ),
        Planted("vehicle", pick([plate, f"车牌{plate}"]), (plate,)),
    ]


def _fix_values(planted: list[Planted]) -> list[Planted]:
    """Values that must not survive, read back from the phrase (the form actually planted)."""
    fixed = []
    for p in planted:
        values = tuple(v for v in p.values if v in p.phrase) or (p.phrase,)
        fixed.append(dataclasses.replace(p, values=values))
    return fixed


def planted_reports(n: int = 24, seed: int = 0) -> list[PlantedReport]:
    """``n`` reports (half English, half Chinese), each holding one identifier of every category."""
    rng = np.random.default_rng(seed)
    reports = []
    for k in range(n):
        lang = "en" if k % 2 == 0 else "zh"
        text = write_report(random_findings(np.random.default_rng(seed * 1000 + k)), lang, seed=k)
        sentences = [s for s in text.replace("\n", " ").split(". " if lang == "en" else "。") if s.strip()]
        planted = _fix_values(_plants(rng, k))
        end = "." if lang == "en" else "。"
        parts = list(sentences)
        for j, p in enumerate(planted):
            where = (j + k) % 3  # start, middle, end
            position = 0 if where == 0 else (len(parts) // 2 if where == 1 else len(parts))
            parts.insert(position, p.phrase)
        joiner = ". " if lang == "en" else "。"
        text = joiner.join(s.strip().rstrip(".。") for s in parts) + end
        reports.append(PlantedReport(text, lang, tuple(planted)))
    return reports


HAND_WRITTEN = [
    "Normal fluorescein angiogram of both eyes. No leakage at the disc. Macula: normal foveal avascular zone.",
    "Early arterial phase at 0:14 shows microaneurysms temporal to the fovea; leakage increases in the late phase.",
    "Hyperfluorescent leakage increasing to the late phase (10 min), 2 DD superotemporal to the disc.",
    "Capillary non-perfusion over 5 disc areas; no NVD, no NVE. Arm-retina time 12.5 s.",
    "Branch retinal vein occlusion (superotemporal vein) with collateral vessels and macular oedema.",
    "Late staining of drusen in the macula; no leakage. Window defects around the disc.",
    "Patient fixation poor; images of the posterior pole only. Angio shows delayed venous filling.",
    "Vein: segmental staining of the vessel wall. Disc: hyperfluorescent in the late phase. Leak: none.",
    "Pooling of dye in a pigment epithelial detachment, 1.5 DD, at the macula.",
    "CNV at the fovea with leakage increasing over time; laser scars inferiorly.",
    "视盘边界清，黄斑区未见渗漏。",
    "造影早期黄斑区可见点状强荧光，晚期渗漏明显，约2个视盘直径。",
    "视网膜静脉迂曲扩张，颞上支静脉阻塞，伴大片无灌注区，约10个视盘面积。",
    "后极部散在微血管瘤，黄斑水肿，晚期囊样积存。",
    "双眼视盘晚期着染，周边部血管壁着染。",
    "黄斑中心凹下可见CNV，晚期荧光渗漏增强。",
    "臂-视网膜循环时间12秒，视网膜动脉充盈正常。",
    "下方周边视网膜可见激光斑，未见新生血管。",
    "Fluorescein angiography: normal choroidal flush at 11 s, arterial filling at 13 s, laminar flow at 16 s.",
    "Impression: proliferative diabetic retinopathy with NVE superotemporally; no NVD.",
]


def clean_reports(n_written: int = 240, seed: int = 100) -> list[tuple[str, str]]:
    """(text, lang) of reports without identifiers: the writer's in both languages, then hand-written ones."""
    reports = []
    for k in range(n_written):
        findings = random_findings(np.random.default_rng(seed + k))
        reports.append((write_report(findings, "en", seed=k), "en"))
        reports.append((write_report(findings, "zh", seed=k), "zh"))
    return reports + [(t, "zh" if any("\u4e00" <= c <= "\u9fff" for c in t) else "en") for t in HAND_WRITTEN]


# Patient ids, folders and file names that are clinical words: never identifiers.
CLINICAL_NAMES = ["disc", "macula", "angio", "leak", "vein", "fovea", "drusen", "pool", "artery", "vessel"]
