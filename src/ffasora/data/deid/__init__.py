"""De-identification of reports in three layers, an audit of a finished dataset, and keyed pseudonyms.

1. ``known``: the record's own identifiers (index columns, DICOM attributes, identifier-like path parts),
   replaced as whole tokens; ordinary and clinical words are never identifiers.
2. ``detectors``: validated detectors (``phonenumbers``, ``python-stdnum``) and date, number and contact rules.
3. ``context``: names and addresses by their context in English and Chinese (with jieba's name tags).

Image masking lives in ``standardise.crop_to_field``. docs/deidentification.md maps each HIPAA Safe Harbor
category to the layer that covers it and says what is known to slip through.
"""

from ffasora.data.deid.audit import Candidate, audit_dataset, audit_text
from ffasora.data.deid.known import KnownIdentifiers, dicom_identifiers, path_identifiers
from ffasora.data.deid.scrubber import LAYERS, Scrubber, load_patterns, pseudonym
from ffasora.data.deid.spans import CATEGORIES, Span

__all__ = [
    "CATEGORIES",
    "LAYERS",
    "Candidate",
    "KnownIdentifiers",
    "Scrubber",
    "Span",
    "audit_dataset",
    "audit_text",
    "dicom_identifiers",
    "load_patterns",
    "path_identifiers",
    "pseudonym",
]
