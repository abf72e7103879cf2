"""Words that are never identifiers: the clinical vocabulary of ``ffasora.findings`` plus ordinary words.

Every layer asks this module before it treats a word as a name: a file called ``disc.mp4`` or a patient
folder called ``macula`` must not turn "leakage at the disc" into "leakage at the [ID]". The clinical words
are harvested from the findings lexicon and phrasebook (the parser's own words, so they stay in step with
it); the ordinary words are the few that capture software and hospitals put into file and folder names.
Chinese surnames start the person-name rules of the context layer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

# Words of file and folder names and of report prose that the findings vocabulary does not hold.
ORDINARY_EN = frozenset(
    [
        "angio",
        "angiogram",
        "angiography",
        "fluorescein",
        "icg",
        "ffa",
        "fa",
        "oct",
        "video",
        "videos",
        "movie",
        "clip",
        "series",
        "frames",
        "frame",
        "image",
        "images",
        "img",
        "scan",
        "scans",
        "exam",
        "study",
        "studies",
        "visit",
        "follow",
        "followup",
        "baseline",
        "export",
        "exports",
        "raw",
        "data",
        "dicom",
        "left",
        "right",
        "eye",
        "eyes",
        "both",
        "od",
        "os",
        "ou",
        "re",
        "le",
        "early",
        "mid",
        "late",
        "phase",
        "phases",
        "arterial",
        "venous",
        "recirculation",
        "normal",
        "abnormal",
        "report",
        "reports",
        "patient",
        "patients",
        "case",
        "cases",
        "control",
        "controls",
        "test",
        "sample",
        "new",
        "old",
        "final",
        "copy",
        "backup",
        "tmp",
        "temp",
        "archive",
        "clinic",
        "clinical",
        "hospital",
        "ward",
        "dept",
        "department",
        "retina",
        "retinal",
        "fundus",
        "leak",
        "leaks",
        "leaking",
        "leakage",
        "vein",
        "veins",
        "artery",
        "arteries",
        "disc",
        "disk",
        "macula",
        "macular",
        "fovea",
        "foveal",
        "vessel",
        "vessels",
        "pool",
        "pooling",
        "stain",
        "staining",
        "edema",
        "oedema",
        "drusen",
        "laser",
        "scar",
        "scars",
        "the",
        "and",
        "for",
        "with",
        "from",
        "into",
        "over",
        "under",
        "seen",
        "shows",
        "show",
        "noted",
        "note",
        "also",
        "there",
        "this",
        "that",
        "these",
        "those",
        "were",
        "was",
        "are",
        "has",
        "have",
        "not",
        "but",
        "none",
    ]
)

# Characters that start a Chinese person name (the commonest surnames; single and double).
SURNAMES_ZH = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔"
    "钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢"
    "安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游"
    "辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟"
    "应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
SURNAMES_ZH_DOUBLE = frozenset(
    ["欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "公孙", "慕容", "尉迟", "长孙"]
)


def _strings(obj: object) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            yield from _strings(item)


@functools.cache
def clinical_words() -> tuple[frozenset[str], frozenset[str]]:
    """(English words of three letters or more, lower case; Chinese runs of two or more characters)."""
    from ffasora.findings import lexicon, phrases

    english: set[str] = set()
    chinese: set[str] = set()
    for module in (lexicon, phrases):
        for name, value in vars(module).items():
            if not name.isupper():
                continue
            for text in _strings(value):
                english.update(w.lower() for w in re.findall(r"[A-Za-z]{3,}", text))
                chinese.update(re.findall(r"[\u4e00-\u9fff]{2,}", text))
    return frozenset(english), frozenset(chinese)


@functools.cache
def _chinese_pieces() -> tuple[frozenset[str], frozenset[str]]:
    """(every 2-4 character piece of a Chinese clinical term; the first two characters of each term)."""
    _, chinese = clinical_words()
    pieces = {t[i : i + n] for t in chinese for n in (2, 3, 4) for i in range(len(t) - n + 1)}
    return frozenset(pieces), frozenset(t[:2] for t in chinese)


def is_ordinary_word(word: str) -> bool:
    """True for a clinical or ordinary word (any case), which is never treated as an identifier."""
    lowered = word.lower()
    english, _ = clinical_words()
    if lowered in ORDINARY_EN or lowered in english:
        return True
    return bool(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", word)) and word in _chinese_pieces()[0]


def starts_clinical_term(text: str, start: int) -> bool:
    """True when a Chinese clinical term of two or more characters begins at ``text[start]``."""
    return text[start : start + 2] in _chinese_pieces()[1]
