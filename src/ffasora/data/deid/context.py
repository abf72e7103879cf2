"""Layer 3: names and addresses found by their context, in English and Chinese.

English names follow a title (Mr, Mrs, Dr, Prof ...) or a label (Patient, Name, Physician, Referred by ...),
with or without a colon; Chinese names follow a label (患者, 姓名, 医生, 主治医生 ...) or precede a title
(先生, 女士, 医生 ...), and jieba's part-of-speech tagger finds person names (tag ``nr``) that begin with a
common surname anywhere else. A candidate that is an ordinary or clinical word (``Patient Normal``,
``患者黄斑水肿``) is not a name. Addresses are house number + street words + a street type (``221B Baker
Street``), labelled addresses, UK and US postcodes, and Chinese chains of province / city / district / road /
number (``北京市朝阳区建国路88号``).
"""

from __future__ import annotations

import functools
import logging
import re

from ffasora.data.deid.spans import Span, regex_spans
from ffasora.data.deid.vocabulary import (
    SURNAMES_ZH,
    SURNAMES_ZH_DOUBLE,
    is_ordinary_word,
    starts_clinical_term,
)

_WORD = r"[A-Z][a-zA-Z'\-]+"
_NAME = rf"{_WORD}(?:\s+[A-Z]\.)?(?:,?\s+{_WORD}){{0,2}}"
_TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Sir|Dame|Doctor|Nurse)"
_LABELS = (
    r"patient(?:'s)?\s+name|name|patient|pt|surname|forename|first\s+name|last\s+name|family\s+name|"
    r"physician|doctor|ophthalmologist|consultant|examiner|photographer|technician|operator|reader|"
    r"referred\s+by|referring(?:\s+physician)?|signed(?:\s+by)?|reported\s+by|dictated\s+by|seen\s+by|"
    r"reviewed\s+by|attending|guardian|mother|father|wife|husband|son|daughter|next\s+of\s+kin|contact"
)
NAME_EN = [
    re.compile(rf"\b{_TITLES}\.?\s+(?P<name>{_NAME})"),
    re.compile(rf"(?i:\b(?:{_LABELS}))\s*[:=\-]?\s*(?P<name>{_NAME})"),
]

_HAN = r"[\u4e00-\u9fff]"
_ZH_LABELS = (
    r"患者姓名|病人姓名|姓名|患者|病人|病患|就诊者|受检者|主治医生|主治医师|主诊医生|住院医师|主任医师|副主任医师|"
    r"检查医生|检查医师|检查者|报告医生|报告医师|审核医生|审核医师|审核|签名|签字|记录者|记录人|操作者|技师|医生|医师|"
    r"护士|联系人|家属|监护人|配偶|转诊医生|申请医生|送检医生"
)
NAME_ZH_LABELLED = re.compile(rf"(?:{_ZH_LABELS})\s*[:：]?\s*(?P<name>{_HAN}{{2,4}})")
# A name written without a label but followed by sex, or by a visit verb: "张伟，男，", "欧阳娜复查".
NAME_ZH_FOLLOWED = re.compile(
    rf"(?P<name>{_HAN}{{2,4}}?)(?=\s*[，,]\s*[男女](?:性|，|,|\s|$)|\s*(?:复查|复诊|就诊|来诊|自诉|主诉|陪同))"
)
NAME_ZH_TITLED = re.compile(rf"(?P<name>{_HAN}{{1,3}}?)(?:先生|女士|小姐|医生|医师|大夫|教授|主任|护士长)")
# Characters that end a name written without a separator: sex, age, verbs of the report.
_ZH_STOP = set("男女性岁于在因的之与和及行做来就复检双左右眼，。、；：,.;: ")

_STREET = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl|Terrace|Close|"
    r"Crescent|Square|Sq|Gardens|Parkway|Highway|Hwy|Row|Mews|Walk|Hill)"
)
_US_STATES = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
    "DC",
]
ADDRESS_EN = [
    re.compile(rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][a-z]+\s+){{1,3}}{_STREET}\b\.?"),
    re.compile(
        r"(?i:\b(?:address|addr|lives\s+at|living\s+at|resides\s+at|residing\s+at|resident\s+of))\s*[:=]?\s*[^\n.;]+"
    ),
    re.compile(r"(?i:\bp\.?\s?o\.?\s+box\s+\d+)"),
    re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"),  # UK postcode
    re.compile(rf"\b(?:{'|'.join(_US_STATES)})\s+\d{{5}}(?:-\d{{4}})?\b"),  # US state + ZIP
    re.compile(r"(?i:\b(?:zip|zip\s+code|postcode|postal\s+code))\s*[:=]?\s*[A-Z0-9][A-Z0-9 -]{3,8}\b"),
]
_ADMIN = [
    rf"{_HAN}{{2,7}}?(?:省|自治区|特别行政区)",
    rf"{_HAN}{{1,7}}?(?:市|自治州|地区|盟)",
    rf"{_HAN}{{1,7}}?(?:区|县|旗)",
    rf"{_HAN}{{1,10}}?(?:街道|镇|乡)",
    rf"[{_HAN[1:-1]}\d]{{1,10}}?(?:大道|大街|胡同|路|街|巷|弄|道|村)",
    r"[\d一二三四五六七八九十]+\s*(?:号院|号楼|号|栋|幢|座|单元|室|楼|层)",
]
ADDRESS_ZH = [
    re.compile("(?:" + "|".join(_ADMIN) + "){2,}"),
    re.compile(
        r"(?:地址|住址|家庭住址|现住址|户籍地址|户籍|籍贯|居住地|通讯地址|工作单位)\s*[:：]?\s*[^\s，。；,;]+"
    ),
    re.compile(r"(?:邮编|邮政编码)\s*[:：]?\s*\d{6}"),
]


def _trim_en(text: str, match: re.Match[str]) -> Span | None:
    """The name group of a match without trailing ordinary words; None when the name is an ordinary word."""
    start, end = match.span("name")
    words = list(re.finditer(r"[A-Za-z'\-]+", text[start:end]))
    while words and is_ordinary_word(words[-1].group()):
        words.pop()
    if not words or is_ordinary_word(words[0].group()):
        return None
    return Span(start, start + words[-1].end(), "NAME")


def english_name_spans(text: str) -> list[Span]:
    spans = []
    for pattern in NAME_EN:
        for match in pattern.finditer(text):
            span = _trim_en(text, match)
            if span is not None:
                spans.append(span)
    return spans


def _zh_name_at(text: str, start: int, longest: int) -> Span | None:
    """A surname-led name of 2..``longest`` characters starting at ``start``, cut before a stop character."""
    if text[start : start + 2] in SURNAMES_ZH_DOUBLE:
        head = 2
    elif text[start : start + 1] in SURNAMES_ZH:
        head = 1
    else:
        return None
    if starts_clinical_term(text, start):
        return None
    end = start + head
    while (
        end < len(text) and end - start < longest and re.match(_HAN, text[end]) and text[end] not in _ZH_STOP
    ):
        if end > start + head and starts_clinical_term(text, end):
            break
        end += 1
    if end - start < 2 or is_ordinary_word(text[start:end]):
        return None
    return Span(start, end, "NAME")


def chinese_name_spans(text: str) -> list[Span]:
    spans = []
    for match in NAME_ZH_LABELLED.finditer(text):
        span = _zh_name_at(
            text,
            match.start("name"),
            3 if text[match.start("name") : match.start("name") + 2] not in SURNAMES_ZH_DOUBLE else 4,
        )
        if span is not None:
            spans.append(span)
    for match in NAME_ZH_FOLLOWED.finditer(text):
        # the shortest run before the cue that starts with a surname
        for start in range(match.start("name"), match.end("name") - 1):
            span = _zh_name_at(text, start, 4)
            if span is not None and span.end == match.end("name"):
                spans.append(span)
                break
    for match in NAME_ZH_TITLED.finditer(text):
        start = match.start("name")
        if text[start] in SURNAMES_ZH and not starts_clinical_term(text, start):
            spans.append(Span(start, match.end("name"), "NAME"))
    return spans + tagged_name_spans(text)


@functools.cache
def _tagger() -> object:
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg


def tagged_name_spans(text: str) -> list[Span]:
    """Person names by jieba's part-of-speech tags (``nr``), kept when they start with a common surname."""
    if not re.search(_HAN, text):
        return []
    posseg = _tagger()
    spans: list[Span] = []
    cursor = 0
    words = list(posseg.cut(text))  # type: ignore[attr-defined]
    for k, token in enumerate(words):
        start = text.find(token.word, cursor)
        cursor = start + len(token.word)
        if token.flag != "nr":
            continue
        word = token.word
        # jieba often splits 王秀英 into 王 / 秀英: join a lone surname with the given name that follows.
        if (
            (len(word) == 1 or word in SURNAMES_ZH_DOUBLE)
            and k + 1 < len(words)
            and words[k + 1].flag in ("nr", "nz", "n")
            and len(words[k + 1].word) <= 2
        ):
            word += words[k + 1].word
        if not 2 <= len(word) <= 4 or not re.fullmatch(rf"{_HAN}+", word):
            continue
        surname = word[:1] in SURNAMES_ZH or word[:2] in SURNAMES_ZH_DOUBLE
        if surname and not is_ordinary_word(word) and not starts_clinical_term(text, start):
            spans.append(Span(start, start + len(word), "NAME"))
    return spans


def address_spans(text: str) -> list[Span]:
    spans = [s for pattern in ADDRESS_EN for s in regex_spans(pattern, text, "ADDRESS")]
    for pattern in ADDRESS_ZH:
        spans += regex_spans(
            pattern, text, "ADDRESS", keep=lambda m: not starts_clinical_term(text, m.start())
        )
    return spans


def context_spans(text: str) -> list[Span]:
    """Every span layer 3 finds in ``text``."""
    return [*english_name_spans(text), *chinese_name_spans(text), *address_spans(text)]
