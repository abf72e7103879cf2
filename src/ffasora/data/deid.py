"""De-identification: report scrubbing with an extensible pattern list, and keyed pseudonyms.

Image masking lives in ``standardise.crop_to_field`` (everything outside the fundus circle is zeroed, which is
where capture software burns in names, ids and dates). Reports are scrubbed by regular expressions in the
spirit of the HIPAA Safe Harbor identifiers: names (after titles or labels), record numbers, dates, phone
numbers, e-mail, street addresses and postcodes, and ages over 89. Known identifiers of the row (its patient
id) are removed literally as well. Patterns are deliberately greedy: a lost number in a report costs less
than a leaked one. Clinical timings (``0:45``, ``12.5 s``, ``3 DD``) are left alone.

A user extends the list with a text file of ``LABEL regex`` lines (``load_patterns``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_NAME = r"[A-Z][a-zA-Z'\-]+(?:\s+[A-Z]\.?(?=\s))?(?:\s+[A-Z][a-zA-Z'\-]+){0,2}"
_STREET = r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl|Terrace|Close|Crescent)"

DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    # Order matters: labelled fields first (they swallow the whole value), then free-standing forms.
    ("EMAIL", r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+"),
    ("URL", r"\b(?:https?://|www\.)\S+"),
    ("NAME", r"(?i:\b(?:patient(?:'s)?\s+name|name|patient|pt|surname|forename))\s*[:=]\s*" + _NAME),
    ("NAME", r"(?:姓名|患者姓名)\s*[:：]\s*[\u4e00-\u9fff·]{2,5}"),
    ("NAME", r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame)\.?\s+" + _NAME),
    (
        "ID",
        r"(?i:\b(?:mrn|hn|uhid|nhs(?:\s+no)?|id|record|accession|hosp(?:ital)?\s+no|case\s+no|no))\b"
        r"\.?\s*(?:number|no\.?|#)?\s*[:#=]?\s*[A-Z0-9][A-Z0-9\-/]{3,}",
    ),
    ("ADDRESS", r"(?i:\baddress)\s*[:=]\s*[^\n.;]+"),
    ("ADDRESS", r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}" + _STREET + r"\b\.?"),
    ("ADDRESS", r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"),  # UK postcode
    ("ADDRESS", r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"),  # US state + ZIP
    ("DATE", r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"),
    ("DATE", r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b"),
    ("DATE", r"\b\d{1,2}(?:st|nd|rd|th)?\s+" + _MONTHS + r",?\s+\d{2,4}\b"),
    ("DATE", r"\b" + _MONTHS + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{2,4}\b"),
    ("DATE", r"\b" + _MONTHS + r"\s+\d{4}\b"),
    ("DATE", r"\d{4}\s*年\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?"),
    ("DATE", r"(?i:\b(?:dob|d\.o\.b\.?|date\s+of\s+birth|born))\s*[:=]?\s*\S+"),
    ("PHONE", r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)\s?|\d{2,5}[\s.-])?\d{3,4}[\s.-]\d{3,4}\b"),
    ("PHONE", r"(?i:\b(?:tel|phone|mobile|fax)\.?)\s*[:=]?\s*[+\d][\d\s().-]{6,}\d"),
    ("AGE", r"(?i:\b(?:9\d|1[0-4]\d)\s*(?:-\s*)?(?:years?|yrs?|y/?o|y\.o\.)(?:[\s-]*old)?)"),
    ("AGE", r"(?i:\b(?:aged?|age:)\s*(?:9\d|1[0-4]\d)\b)"),
    ("AGE", r"(?:9\d|1[0-4]\d)\s*岁"),
    ("ID", r"\b[A-Z]{0,3}\d{6,}\b"),  # any long number: record, accession or device serial numbers
)


@dataclasses.dataclass(frozen=True)
class Scrubber:
    """Compiled identifier patterns; ``scrub`` replaces each match with ``[LABEL]``."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    @classmethod
    def build(cls, extra: Sequence[tuple[str, str]] = ()) -> Scrubber:
        compiled = []
        for label, regex in (*DEFAULT_PATTERNS, *extra):
            try:
                compiled.append((label.upper(), re.compile(regex)))
            except re.error as err:
                raise ValueError(f"scrub pattern {label} {regex!r} is not a valid regex ({err})") from err
        return cls(tuple(compiled))

    def scrub(self, text: str, known: Iterable[str] = ()) -> tuple[str, Counter[str]]:
        """Report text with identifiers replaced, and how many of each label were replaced.

        known: literal identifiers of this row (e.g. the patient id), removed wherever they appear.
        """
        counts: Counter[str] = Counter()
        for value in sorted({k.strip() for k in known if k and len(k.strip()) >= 3}, key=len, reverse=True):
            text, n = re.subn(re.escape(value), "[ID]", text, flags=re.IGNORECASE)
            counts["ID"] += n
        for label, pattern in self.patterns:
            text, n = pattern.subn(f"[{label}]", text)
            counts[label] += n
        return text, +counts


def load_patterns(path: str | Path) -> list[tuple[str, str]]:
    """Extra patterns from a text file: one ``LABEL regex`` per line; blank lines and ``#`` comments skipped."""
    path = Path(path)
    patterns = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.strip().split(None, 1)
        if len(parts) != 2 or not re.fullmatch(r"[A-Za-z_]+", parts[0]):
            raise ValueError(f"{path}:{number}: expected 'LABEL regex', got {line!r}")
        patterns.append((parts[0], parts[1]))
    Scrubber.build(patterns)  # fail now, naming the line's regex, rather than in a worker
    return patterns


def pseudonym(value: str, key: bytes, prefix: str, length: int = 12) -> str:
    """A stable pseudonym: keyed HMAC-SHA256 of ``value``, so it cannot be reversed without the key.

    A plain hash of a record number could be reversed by hashing every possible number; the key, kept apart
    from the dataset, prevents that while keeping ids stable across resumed runs.
    """
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{prefix}{digest[:length]}"
