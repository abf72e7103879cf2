"""Layer 2: identifiers with a form of their own, found by validated detectors and date rules.

Phone numbers come from ``phonenumbers`` (Google's libphonenumber metadata: a number counts only when it is a
valid number of some region, so a measurement is never read as one). National identity and social security
numbers come from ``python-stdnum`` with their check digits (Chinese resident id with its trailing ``X``, US
SSN). Record, accession and device numbers, e-mail, URLs, IP addresses, Chinese licence plates, ages over 89
and dates (English, Chinese, Chinese numerals, relative forms) are rules of this module. Clinical timings
(``0:45``, ``12.5 s``, ``3 DD``, ``约10个视盘面积``) have none of these forms and are left alone.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from ffasora.data.deid.spans import Span, regex_spans

PHONE_REGIONS = ("CN", "US", "GB", "HK", "TW", "SG", "AU", "CA", "DE", "FR", "IN")

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_WEEKDAYS = r"(?:Mon|Tues?|Wed(?:nes)?|Thu(?:rs)?|Fri|Sat(?:ur)?|Sun)day"
_ZH_DIGIT = "〇零一二三四五六七八九"
_ZH_NUMBER = "一二三四五六七八九十两"

EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s，。；]+", re.IGNORECASE)
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
PLATE_ZH = re.compile(
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z]\s?[A-Z0-9]{5,6}(?![A-Za-z0-9])"
)

DATES = [
    re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?\b"),
    re.compile(r"\b\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})\b"),
    re.compile(r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b"),
    re.compile(r"\b\d{1,2}(?:st|nd|rd|th)?(?:\s+of)?\s+" + _MONTHS + r"(?:,?\s+\d{2,4})?\b"),
    re.compile(r"\b" + _MONTHS + r"\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{2,4})?\b"),
    re.compile(r"\b" + _MONTHS + r",?\s+(?:19|20)\d{2}\b"),
    re.compile(r"\d{4}\s*[年/.-]\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号])?"),
    re.compile(r"(?<!\d)\d{1,2}\s*月\s*\d{1,2}\s*[日号]"),
    re.compile(
        rf"[{_ZH_DIGIT}]{{2,4}}\s*年(?:\s*[{_ZH_NUMBER}]{{1,3}}\s*月(?:\s*[{_ZH_NUMBER}]{{1,3}}\s*[日号])?)?"
    ),
    re.compile(rf"(?<![{_ZH_NUMBER}个])[{_ZH_NUMBER}]{{1,3}}\s*月\s*[{_ZH_NUMBER}]{{1,3}}\s*[日号]"),
    re.compile(
        r"(?i:\b(?:dob|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?|exam(?:ination)?\s+date|"
        r"date\s+of\s+(?:exam(?:ination)?|visit|study|admission|discharge|service)))\s*[:=]?\s*[^\s,;]+"
        r"(?:[ ,]+[^\s,;]+){0,2}"
    ),
    re.compile(
        r"(?:出生日期|出生年月|生日|检查日期|就诊日期|入院日期|出院日期|报告日期|日期)\s*[:：]?\s*[^\s，。；,;]+"
    ),
    # relative forms: a visit "yesterday" or "last Tuesday" dates the record as well as a calendar date does
    re.compile(
        r"(?i:\b(?:yesterday|today|tomorrow|(?:last|next|this)\s+(?:week|month|year|" + _WEEKDAYS + r")|"
        r"\d+\s+(?:days?|weeks?|months?|years?)\s+ago|(?:on\s+)?" + _WEEKDAYS + r")\b)"
    ),
    re.compile(
        r"(?:今天|昨天|前天|明天|后天|今日|昨日|去年|前年|今年|上个?月|本月|下个?月|(?:上|下|本|这)(?:周|星期)[一二三四五六日天]?|"
        r"星期[一二三四五六日天]|礼拜[一二三四五六日天]|\d+\s*(?:天|周|个月|年)前)"
    ),
]

RECORD_NUMBERS = [
    re.compile(
        r"(?i:\b(?:mrn|hn|uhid|nhs(?:\s+no)?|id|record|accession|acc|hosp(?:ital)?\s+no|case\s+no|no|"
        r"account|acct|policy|member|insurance|beneficiary|licen[cs]e|certificate|serial|s/n|sn|device))\b"
        r"\.?\s*(?:number|no\.?|#)?\s*[:#=]?\s*(?=[A-Z0-9\-/]*\d)[A-Z0-9][A-Z0-9\-/]{3,}"
    ),
    re.compile(
        r"(?:住院号|门诊号|病历号|病案号|登记号|检查号|影像号|就诊号|就诊卡号|卡号|医保(?:卡)?号|社保(?:卡)?号|身份证(?:号码?)?|"
        r"证件号(?:码)?|护照号(?:码)?|档案号|编号|ID号?)\s*[:：#]?\s*[A-Za-z0-9][A-Za-z0-9\-/]{2,}"
    ),
    re.compile(r"(?<![A-Za-z0-9])[A-Z]{1,3}-?\d{5,}(?![A-Za-z0-9])"),
    re.compile(r"(?<![\d.])\d{6,}(?![\d.]?\d)"),
]

AGES = [
    re.compile(r"(?i:\b(?:9\d|1[0-4]\d)\s*(?:-\s*)?(?:years?|yrs?|y/?o|y\.o\.)(?:[\s-]*old)?)"),
    re.compile(r"(?i:\b(?:aged?|age:)\s*(?:9\d|1[0-4]\d)\b)"),
    re.compile(r"(?:9\d|1[0-4]\d)\s*(?:岁|周岁)"),
    re.compile(r"(?:九十[一二三四五六七八九]?|一百[零一二三四五六七八九十]*)\s*(?:岁|周岁)"),
    re.compile(r"(?:年龄|年纪)\s*[:：]?\s*(?:9\d|1[0-4]\d)"),
]

LABELLED_PHONE = re.compile(
    r"(?i:\b(?:tel|phone|mobile|cell|fax|contact)\.?|电话|手机|联系电话|联系方式|传真|座机)\s*(?:no\.?|号码?)?\s*[:：=]?\s*"
    r"[+\d][\d\s().-]{5,}\d"
)
_ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_SSN_CANDIDATE = re.compile(r"(?<![\d-])\d{3}[- ]?\d{2}[- ]?\d{4}(?![\d-])")


def phone_spans(text: str) -> list[Span]:
    """Valid phone numbers of any region in ``PHONE_REGIONS`` (a leading + names its own), and labelled ones."""
    import phonenumbers

    spans = regex_spans(LABELLED_PHONE, text, "PHONE")
    for region in PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            spans.append(Span(match.start, match.end, "PHONE"))
    return spans


def national_id_spans(text: str) -> list[Span]:
    """Chinese resident ids (18 digits with a check digit, or X; 15-digit old form) and US SSNs."""
    from stdnum.cn import ric
    from stdnum.us import ssn

    spans = [
        Span(m.start(), m.end(), "NATIONAL_ID")
        for m in _ID_CANDIDATE.finditer(text)
        if ric.is_valid(m.group())
    ]
    spans += [
        Span(m.start(), m.end(), "NATIONAL_ID")
        for m in _SSN_CANDIDATE.finditer(text)
        if ssn.is_valid(m.group())
    ]
    return spans


def _is_ip(match: re.Match[str]) -> bool:
    try:
        ipaddress.ip_address(match.group())
    except ValueError:
        return False
    return ":" not in match.group() or match.group().count(":") >= 3


def date_spans(text: str) -> list[Span]:
    return [s for pattern in DATES for s in regex_spans(pattern, text, "DATE")]


def record_number_spans(text: str) -> list[Span]:
    return [s for pattern in RECORD_NUMBERS for s in regex_spans(pattern, text, "ID")]


def age_spans(text: str) -> list[Span]:
    return [s for pattern in AGES for s in regex_spans(pattern, text, "AGE")]


def contact_spans(text: str) -> list[Span]:
    """E-mail, URLs, IP addresses and Chinese licence plates."""
    return [
        *regex_spans(EMAIL, text, "EMAIL"),
        *regex_spans(URL, text, "URL"),
        *regex_spans(IPV4, text, "IP", keep=_is_ip),
        *regex_spans(IPV6, text, "IP", keep=_is_ip),
        *regex_spans(PLATE_ZH, text, "VEHICLE"),
    ]


@functools.cache
def _warm() -> None:
    """Import the libraries once per process (a worker pays this once, not per report)."""
    import phonenumbers  # noqa: F401
    from stdnum.cn import ric  # noqa: F401


def detector_spans(text: str) -> list[Span]:
    """Every span layer 2 finds in ``text``."""
    _warm()
    return [
        *contact_spans(text),
        *phone_spans(text),
        *national_id_spans(text),
        *date_spans(text),
        *age_spans(text),
        *record_number_spans(text),
    ]
