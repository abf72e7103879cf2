"""The shared clinical language: finding codes, reports written from them, and reports parsed back."""

from ffasora.findings.compact import from_compact, to_compact
from ffasora.findings.ontology import (
    DIAGNOSIS_CODES,
    FINDING_CODES,
    Diagnosis,
    Extent,
    Finding,
    Findings,
)
from ffasora.findings.parser import detect_language, parse_report, to_canonical_english
from ffasora.findings.writer import write_report

__all__ = [
    "DIAGNOSIS_CODES",
    "FINDING_CODES",
    "Diagnosis",
    "Extent",
    "Finding",
    "Findings",
    "detect_language",
    "from_compact",
    "parse_report",
    "to_canonical_english",
    "to_compact",
    "write_report",
]
