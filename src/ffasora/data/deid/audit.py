"""An independent second pass over everything a dataset folder holds: is any identifier left?

The audit does not reuse the scrubber's rules. It looks for what an identifier is made of, with wider nets:
any run of five digits or more (then classified as national id, phone or number by ``python-stdnum`` and
``phonenumbers`` at their loosest), anything shaped like a date in either language (digits, month and weekday
names, Chinese numerals, relative words), a capitalised word after a title or person label, a surname after
a Chinese person label or before a Chinese title, a jieba person name, street and Chinese administrative
words after a name-like word, e-mail, URL, IP and licence-plate shapes, and ages over 89. Placeholders
(``[NAME]``) and the dataset's own structured fields (pseudonymous ids, the creation time, digests) are
checked against their expected form instead. ``prepare`` runs it at the end and fails if anything remains.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ffasora.data.deid.spans import PLACEHOLDER
from ffasora.data.deid.vocabulary import (
    SURNAMES_ZH,
    SURNAMES_ZH_DOUBLE,
    is_ordinary_word,
    starts_clinical_term,
)

TEXT_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".txt", ".md", ".html", ".xml", ".yaml", ".yml", ".toml")

# Fields whose values have one strict form; a value of another form is audited as text.
STRUCTURED = {
    "id": re.compile(r"v-[0-9a-f]{12}"),
    "patient_id": re.compile(r"p-[0-9a-f]{10}"),
    "creator": re.compile(r"ffasora [0-9][\w.+-]*(?: [a-z ]+)?"),
    "created": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\+00:00|Z)"),
    "key_check": re.compile(r"[0-9a-f]{12}"),
    "extra_patterns_sha256": re.compile(r"[0-9a-f]{16}"),
}


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One possible identifier left in a dataset: where it is, what it looks like, and the text itself."""

    category: str
    file: str
    record: str | None
    field: str
    text: str

    def line(self) -> str:
        where = f"{self.file}" + (f" record {self.record}" if self.record else "") + f" {self.field}"
        return f"{self.category}: {self.text!r} ({where})"


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_ZH_NUM = "〇零一二三四五六七八九十两"
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("EMAIL", re.compile(r"\S+@\S+\.\w+")),
    ("URL", re.compile(r"(?i:\b(?:https?|ftp)://\S+|\bwww\.\S+)")),
    (
        "IP",
        re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b|\b[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){3,7}\b", re.IGNORECASE),
    ),
    ("VEHICLE", re.compile(r"[\u4e00-\u9fff][A-Z]\s?[A-Z0-9]{5,6}\b")),
    ("DATE", re.compile(r"\b\d{1,4}\s?[-/.]\s?\d{1,2}\s?[-/.]\s?\d{1,4}\b")),
    (
        "DATE",
        re.compile(rf"\b{_MONTH}\s+\d{{1,4}}\b|\b\d{{1,2}}(?:st|nd|rd|th)?(?:\s+of)?\s+{_MONTH}(?![a-z])"),
    ),
    ("DATE", re.compile(r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\b")),
    ("DATE", re.compile(rf"[\d{_ZH_NUM}]+\s*[年月]\s*[\d{_ZH_NUM}]+\s*[月日号]|[\d{_ZH_NUM}]{{4}}\s*年")),
    (
        "DATE",
        re.compile(
            r"(?i:\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b|\byesterday\b|\btomorrow\b|\btoday\b|\bago\b)"
        ),
    ),
    (
        "DATE",
        re.compile(
            r"昨天|今天|明天|前天|后天|去年|前年|今年|上个?月|下个?月|星期.|礼拜.|[上下本这]周.|\d+\s*[天周年]前|个月前"
        ),
    ),
    (
        "AGE",
        re.compile(
            r"(?i:\b(?:9\d|1[0-4]\d)\s*[-\s]*(?:y|yo|yrs?|years?)\b|\bage[ds]?\s*:?\s*(?:9\d|1[0-4]\d)\b)"
        ),
    ),
    ("AGE", re.compile(rf"(?:9\d|1[0-4]\d|九十[{_ZH_NUM}]?|一百[{_ZH_NUM}]*)\s*周?岁")),
    (
        "ADDRESS",
        re.compile(
            r"\b\d+[A-Za-z]?\s+(?:[A-Z][a-z]+\s+)+(?:St|Street|Rd|Road|Ave|Avenue|Lane|Ln|Drive|Dr|Blvd|Boulevard|Way|Court|Ct|Place|Pl|Close|Terrace|Square|Row|Mews|Hill)\b"
        ),
    ),
    (
        "ADDRESS",
        re.compile(
            r"(?i:\b(?:address|lives\s+at|resides\s+at|p\.?o\.?\s+box|zip|postcode)\b)|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b|\b[A-Z]{2}\s+\d{5}\b"
        ),
    ),
    (
        "ADDRESS",
        re.compile(
            r"[\u4e00-\u9fff]{1,8}(?:省|市|自治区)[\u4e00-\u9fff\d]*?(?:区|县|路|街|道|镇|乡|村|号)|[\u4e00-\u9fff\d]{1,10}(?:路|街|巷|弄|胡同)\s*\d+\s*号|地址|住址|邮编"
        ),
    ),
    ("NAME", re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame)\b\.?\s+(?P<w>[A-Z][\w'\-]*)")),
    (
        "NAME",
        re.compile(
            r"(?i:\b(?:name|patient|pt|physician|doctor|examiner|technician|photographer|operator|signed|referred\s+by|reported\s+by|seen\s+by|guardian|contact|surname|forename))\b\s*[:=\-]?\s*(?P<w>[A-Z][a-z'\-]+)"
        ),
    ),
    (
        "NAME",
        re.compile(
            r"(?:姓名|患者|病人|医生|医师|主治医生|检查者|审核|签名|联系人|家属|技师|护士)\s*[:：]?\s*(?P<z>[\u4e00-\u9fff])"
        ),
    ),
    ("NAME", re.compile(r"(?P<z>[\u4e00-\u9fff])[\u4e00-\u9fff]{0,2}(?:先生|女士|小姐|大夫|教授)")),
    ("NAME", re.compile(r"(?P<z>[\u4e00-\u9fff])[\u4e00-\u9fff]{1,3}(?=[，,]\s*[男女]|复查|复诊|就诊|陪同)")),
]
_DIGITS = re.compile(
    r"(?<![A-Za-z0-9.])\+?\d[\d\s()\-]{3,}\d[Xx]?(?![A-Za-z0-9.])|(?<![A-Za-z0-9.])[A-Za-z]{0,3}\d{5,}[Xx]?(?![A-Za-z0-9.])"
)
_TITLES = {"Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Sir", "Dame", "Doctor", "Nurse", "Professor"}


def _number_category(text: str) -> str | None:
    from stdnum.cn import ric
    from stdnum.us import ssn

    digits = re.sub(r"[^\dXx]", "", text)
    if len(re.sub(r"\D", "", digits)) < 5:
        return None
    if ric.is_valid(digits) or ssn.is_valid(digits):
        return "NATIONAL_ID"
    import phonenumbers

    for region in ("CN", "US", "GB"):
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number) and len(re.sub(r"\D", "", text)) >= 7:
            return "PHONE"
    return "ID"


def _name_word_ok(match: re.Match[str], text: str) -> bool:
    """The word after a title or label is a name candidate unless it is an ordinary or clinical word."""
    groups = match.groupdict()
    if groups.get("w"):
        word = groups["w"]
        return not is_ordinary_word(word) and word.upper() not in ("OD", "OS", "OU") and word not in _TITLES
    if groups.get("z"):
        start = match.start("z")
        surname = groups["z"] in SURNAMES_ZH or text[start : start + 2] in SURNAMES_ZH_DOUBLE
        return surname and not starts_clinical_term(text, start)
    return True


def audit_text(text: str) -> list[tuple[str, str]]:
    """(category, excerpt) of every candidate identifier in ``text``; placeholders are skipped."""
    masked = PLACEHOLDER.sub(lambda m: " " * len(m.group()), text)
    found: list[tuple[str, str]] = []
    for match in _DIGITS.finditer(masked):
        category = _number_category(match.group())
        if category:
            found.append((category, match.group().strip()))
    for category, pattern in _RULES:
        for match in pattern.finditer(masked):
            if category != "NAME" or _name_word_ok(match, masked):
                found.append((category, match.group().strip()))
    found += [("NAME", name) for name in _tagged_names(masked)]
    return list(dict.fromkeys(found))


def _tagged_names(text: str) -> list[str]:
    """jieba person names (``nr``) that start with a surname and are no clinical word."""
    if not re.search(r"[\u4e00-\u9fff]", text):
        return []
    from ffasora.data.deid.context import tagged_name_spans

    return [text[s.start : s.end] for s in tagged_name_spans(text)]


def _strings(value: Any, field: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):  # field names are structure; others are text
                yield from _strings(key, f"{field}.<key>" if field else "<key>")
            yield from _strings(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list):
        for k, item in enumerate(value):
            yield from _strings(item, f"{field}[{k}]")


def _audit_value(file: str, record: str | None, field: str, value: str) -> list[Candidate]:
    form = STRUCTURED.get(field.rsplit(".", 1)[-1])
    if form is not None and form.fullmatch(value):
        return []
    return [Candidate(c, file, record, field, t) for c, t in audit_text(value)]


def audit_dataset(root: str | Path) -> list[Candidate]:
    """Every candidate identifier in every text file and file name of the dataset folder ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    found: list[Candidate] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.parent.name in ("videos", "truth") and STRUCTURED["id"].fullmatch(path.name.split(".")[0]):
            pass
        else:
            found += _audit_value(rel, None, "<file name>", rel)
        if path.suffix.lower() not in TEXT_SUFFIXES:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines() if path.suffix.lower() == ".jsonl" else [text]
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line) if path.suffix.lower() in (".json", ".jsonl") else None
            except json.JSONDecodeError:
                data = None
            if data is None:
                found += _audit_value(rel, None, f"line {number}", line)
                continue
            record = str(data.get("id")) if isinstance(data, dict) and "id" in data else None
            for field, value in _strings(data, ""):
                found += _audit_value(rel, record, field, value)
    return found
