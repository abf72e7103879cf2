"""Layer 1: the identifiers a record is known to have, replaced wherever they occur as whole tokens.

They come from the index (patient id, patient name and every column the user marks as identifying), from
DICOM attributes (patient name and id, birth date, institution, physicians, operators, accession number,
study date ...) and from path components that look like identifiers (``H0012345``, ``OD_20240301``,
``Smith_John``). A value is matched as a whole token, never as part of a longer word; a value that is an
ordinary or clinical word (``disc``, ``macula``, ``angio``) is never an identifier, whichever source named it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from ffasora.data.deid.spans import Span
from ffasora.data.deid.vocabulary import is_ordinary_word

# DICOM attributes that identify a patient, a person or a place (PS3.15 Annex E, the basic profile).
DICOM_PERSON_ATTRIBUTES = (
    "PatientName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy",
    "RequestingPhysician",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "ResponsiblePerson",
)
DICOM_ID_ATTRIBUTES = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "DeviceSerialNumber",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
)
DICOM_DATE_ATTRIBUTES = ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")

_CJK = re.compile(r"[\u4e00-\u9fff]")


def date_variants(value: str) -> list[str]:
    """A date as the ways a report may write it (``20240301`` -> ``2024-03-01``, ``01/03/2024``, ``2024年3月1日``)."""
    digits = re.sub(r"\D", "", value)
    try:
        day = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])) if len(digits) == 8 else None
    except ValueError:
        day = None
    if day is None:
        return [value]
    y, m, d = day.year, day.month, day.day
    return [
        value,
        f"{y}{m:02d}{d:02d}",
        f"{y}-{m:02d}-{d:02d}",
        f"{y}/{m:02d}/{d:02d}",
        f"{y}.{m:02d}.{d:02d}",
        f"{y}-{m}-{d}",
        f"{y}/{m}/{d}",
        f"{d:02d}/{m:02d}/{y}",
        f"{m:02d}/{d:02d}/{y}",
        f"{d}/{m}/{y}",
        f"{m}/{d}/{y}",
        f"{d:02d}.{m:02d}.{y}",
        f"{y}年{m}月{d}日",
        f"{y}年{m:02d}月{d:02d}日",
    ]


def name_parts(value: str) -> list[str]:
    """A person name and its parts (``Doe^Jane`` -> ``Doe^Jane``, ``Jane Doe``, ``Doe``, ``Jane``)."""
    parts = [p for p in re.split(r"[\^,\s_]+", value.strip()) if p]
    return [value.strip(), " ".join(reversed(parts)), " ".join(parts), *parts]


def path_identifiers(path: str) -> list[str]:
    """Path components that look like identifiers: record-number-like tokens, names, Chinese names.

    ``P001/OD_20240301.mp4`` gives ``P001``, ``OD_20240301`` and ``20240301``; ``Smith_John/od.avi`` gives
    ``Smith`` and ``John``; ``disc.mp4``, ``macula/angio`` and ``series_0001`` give nothing but ``0001``-free
    tokens of three digits or more. Single ordinary or clinical words never count.
    """
    found: list[str] = []
    parts = PurePosixPath(path).parts
    for k, part in enumerate(parts):
        stem = PurePosixPath(part).stem if k == len(parts) - 1 else part
        tokens = [t for t in re.split(r"[_\-.\s^,()]+", stem) if t]
        if any(sum(c.isdigit() for c in t) >= 3 for t in tokens) and len(stem) >= 4:
            found.append(stem)
        for token in tokens:
            if sum(c.isdigit() for c in token) >= 3:
                found.append(token)
        capitalised = [t for t in tokens if re.fullmatch(r"[A-Z][a-z]+|[A-Z]{2,}", t)]
        camel = re.findall(r"[A-Z][a-z]+", stem) if re.fullmatch(r"(?:[A-Z][a-z]+){2,3}", stem) else []
        for group in (capitalised if len(capitalised) >= 2 else [], camel):
            found.extend(t for t in group if not is_ordinary_word(t))
        found.extend(
            t for t in tokens if re.fullmatch(r"[\u4e00-\u9fff]{2,4}", t) and not is_ordinary_word(t)
        )
    return found


def dicom_identifiers(ds: object) -> list[tuple[str, str]]:
    """(category, value) of every identifying attribute a DICOM dataset holds."""
    found: list[tuple[str, str]] = []
    for attribute in (*DICOM_PERSON_ATTRIBUTES, *DICOM_ID_ATTRIBUTES, *DICOM_DATE_ATTRIBUTES):
        value = getattr(ds, attribute, None)
        if value is None or value == "":
            continue
        values = (
            list(value)
            if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"
            else [value]
        )
        for item in values:
            text = str(item).strip()
            if not text:
                continue
            if attribute in DICOM_PERSON_ATTRIBUTES:
                found += [("NAME", p) for p in name_parts(text)]
            elif attribute in DICOM_DATE_ATTRIBUTES:
                found += [("DATE", d) for d in date_variants(text)]
            else:
                found.append(("ID", text))
    return found


@dataclasses.dataclass(frozen=True)
class KnownIdentifiers:
    """(category, value) pairs known to identify one record; ``spans`` finds them as whole tokens."""

    values: tuple[tuple[str, str], ...] = ()

    @classmethod
    def collect(
        cls,
        *,
        ids: Iterable[str] = (),
        names: Iterable[str] = (),
        dates: Iterable[str] = (),
        paths: Iterable[str] = (),
        dicom: Iterable[tuple[str, str]] = (),
    ) -> KnownIdentifiers:
        values: list[tuple[str, str]] = [("ID", v) for v in ids]
        values += [("NAME", p) for name in names for p in name_parts(name)]
        values += [("DATE", d) for date in dates for d in date_variants(date)]
        values += [("ID", p) for path in paths for p in path_identifiers(path)]
        values += list(dicom)
        return cls(tuple(dict.fromkeys((label, v.strip()) for label, v in values if usable(v))))

    def __add__(self, other: KnownIdentifiers) -> KnownIdentifiers:
        return KnownIdentifiers(tuple(dict.fromkeys(self.values + other.values)))

    def spans(self, text: str) -> list[Span]:
        spans = []
        for label, value in sorted(self.values, key=lambda lv: -len(lv[1])):
            for match in _token_pattern(value).finditer(text):
                spans.append(Span(match.start(), match.end(), label))
        return spans


def usable(value: str) -> bool:
    """A known value is matched unless it is too short to be safe or an ordinary or clinical word."""
    value = value.strip()
    if _CJK.search(value):
        return len(value) >= 2 and not is_ordinary_word(value)
    if len(value) < 3 or not re.search(r"[A-Za-z0-9]", value):
        return False
    return not is_ordinary_word(value)


def _token_pattern(value: str) -> re.Pattern[str]:
    """``value`` as a whole token: not inside a longer word or number (Chinese values match as they stand)."""
    body = r"\s*".join(re.escape(p) for p in value.split())
    if _CJK.search(value):
        return re.compile(body)
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)
