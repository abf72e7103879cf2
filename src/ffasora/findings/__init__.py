"""The shared clinical language: finding codes, reports written from them, and reports parsed back."""

from ffasora.findings.ontology import (
    DIAGNOSIS_CODES,
    FINDING_CODES,
    Diagnosis,
    Extent,
    Finding,
    Findings,
)

__all__ = ["DIAGNOSIS_CODES", "FINDING_CODES", "Diagnosis", "Extent", "Finding", "Findings"]
