"""De-identification over the generated corpus: each layer alone, no planted identifier survives, the audit
finds each one planted after the scrubber, and clean reports (with clinical-word names) are unchanged."""

from __future__ import annotations

from collections import Counter
from difflib import SequenceMatcher

import pytest
from deid_corpus import CLINICAL_NAMES, clean_reports, planted_reports

from ffasora.data.deid import KnownIdentifiers, Scrubber, audit_text
from ffasora.findings import parse_report, to_compact

REPORTS = planted_reports(24)


def _survivors(text: str, values: tuple[str, ...]) -> list[str]:
    return [v for v in values if v.lower() in text.lower()]


def _overlaps(excerpt: str, phrase: str) -> bool:
    """The audit's excerpt is (a part of) the planted phrase: they share min(4, its length) characters."""
    match = SequenceMatcher(None, excerpt, phrase).find_longest_match()
    return match.size >= min(4, len(excerpt.strip()))


def corpus_table() -> dict[str, Counter[str]]:
    """category -> planted / survived / audit found, over the whole corpus."""
    scrubber = Scrubber.build()
    table: dict[str, Counter[str]] = {}
    for report in REPORTS:
        clean, _ = scrubber.scrub(report.text)
        template, _ = scrubber.scrub(report.text)
        for p in report.planted:
            row = table.setdefault(p.category, Counter())
            row["planted"] += 1
            row["survived"] += bool(_survivors(clean, p.values))
            for where in (0, len(template) // 2, len(template)):
                after = template[:where] + " " + p.phrase + " " + template[where:]
                row["audit_tried"] += 1
                row["audit_found"] += any(_overlaps(text, p.phrase) for _, text in audit_text(after))
    return table


@pytest.fixture(scope="module")
def table() -> dict[str, Counter[str]]:
    return corpus_table()


def test_the_corpus_plants_over_300_identifiers_of_12_categories_in_both_languages() -> None:
    planted = [p for r in REPORTS for p in r.planted]
    assert len(planted) >= 300 and len({p.category for p in planted}) >= 12
    assert {r.lang for r in REPORTS} == {"en", "zh"}
    for r in REPORTS:  # every phrase really is in its report
        assert all(p.phrase in r.text for p in r.planted)


def test_no_planted_identifier_survives_scrubbing(table) -> None:
    survived = {c: row["survived"] for c, row in table.items() if row["survived"]}
    assert not survived, survived
    assert sum(row["planted"] for row in table.values()) >= 300


def test_the_audit_finds_each_identifier_planted_after_the_scrubber(table) -> None:
    scrubber = Scrubber.build()
    for report in REPORTS:  # the scrubbed report on its own is clean to the audit
        clean, _ = scrubber.scrub(report.text)
        assert audit_text(clean) == [], (clean, audit_text(clean))
    missed = {c: row["audit_tried"] - row["audit_found"] for c, row in table.items()}
    assert not any(missed.values()), missed


def test_each_layer_on_its_own() -> None:
    text = "Patient John Whitfield (QX-7781), tel 13800138000, seen 2024-03-01 at 221B Baker Street; no NVD."
    known = KnownIdentifiers.collect(ids=["QX-7781"], names=["Whitfield^John"])
    only = {
        layer: Scrubber.build(layers=[layer]).scrub(text, known)[0]
        for layer in ("known", "detectors", "context")
    }
    # known: the record's own values, nothing else
    assert "QX-7781" not in only["known"] and "Whitfield" not in only["known"] and "John" not in only["known"]
    assert "13800138000" in only["known"] and "Baker" in only["known"]
    # detectors: phone and date, not the name or the street
    assert "13800138000" not in only["detectors"] and "2024-03-01" not in only["detectors"]
    assert "Whitfield" in only["detectors"] and "Baker Street" in only["detectors"]
    # context: the name after "Patient" (no colon) and the street, not the phone
    assert "Whitfield" not in only["context"] and "Baker Street" not in only["context"]
    assert "13800138000" in only["context"]
    assert all(t.endswith("no NVD.") for t in only.values())


def test_known_identifiers_are_whole_tokens_and_never_clinical_words() -> None:
    scrubber = Scrubber.build(layers=["known"])
    text = "Angiogram: leakage at the disc; macula dry. Vein occlusion. Seen for QX-77 (qx-77)."
    for name in CLINICAL_NAMES:
        known = KnownIdentifiers.collect(
            ids=[name], names=[name], paths=[f"{name}/{name}.mp4", f"{name}_angio/disc.mp4"]
        )
        assert known.values == () and scrubber.scrub(text, known)[0] == text
    known = KnownIdentifiers.collect(
        ids=["QX-77", "ang"], paths=["P0042/OD_20240301.mp4", "Smith_John/od.avi"]
    )
    clean, counts = scrubber.scrub(text + " P0042 20240301 John Smith angle", known)
    assert "QX-77" not in clean and "qx-77" not in clean and counts["ID"] >= 4
    assert "Angiogram" in clean and "angle" in clean and "Smith" not in clean


@pytest.fixture(scope="module")
def clean() -> list[tuple[str, str]]:
    reports = clean_reports(240)
    assert len(reports) >= 500
    return reports


def test_clean_reports_and_their_finding_codes_are_unchanged(clean) -> None:
    scrubber = Scrubber.build()
    changed = []
    for k, (text, _) in enumerate(clean):
        name = CLINICAL_NAMES[k % len(CLINICAL_NAMES)]
        other = CLINICAL_NAMES[(k + 3) % len(CLINICAL_NAMES)]
        known = KnownIdentifiers.collect(
            ids=[name], names=[other], paths=[f"{name}/{other}.mp4", f"{other}/angio.avi"]
        )
        scrubbed, counts = scrubber.scrub(text, known)
        if scrubbed != text or to_compact(parse_report(scrubbed)) != to_compact(parse_report(text)):
            changed.append((text, scrubbed, counts))
    assert not changed, changed[:3]


def test_the_audit_finds_nothing_in_clean_reports(clean) -> None:
    flagged = [(text, audit_text(text)) for text, _ in clean if audit_text(text)]
    assert not flagged, flagged[:3]


def test_dicom_attributes_are_known_identifiers(tmp_path) -> None:
    import numpy as np
    from prepare_corpus import write_dicom_multiframe

    from ffasora.data.ingest import read_source

    frames = np.zeros((5, 16, 16), np.float32)
    path = write_dicom_multiframe(tmp_path / "a.dcm", frames, np.arange(5.0))
    import pydicom

    ds = pydicom.dcmread(path)
    ds.InstitutionName, ds.ReferringPhysicianName, ds.PatientBirthDate = (
        "Rosewood Eye Clinic",
        "Okafor^Amara",
        "19450307",
    )
    ds.save_as(path)
    known = KnownIdentifiers(read_source(path).identifiers)
    text = "Jane Doe (MRN12345678), born 1945-03-07, referred by Amara Okafor of Rosewood Eye Clinic. Disc normal."
    clean, counts = Scrubber.build(layers=["known"]).scrub(text, known)
    assert clean == "[NAME] ([ID]), born [DATE], referred by [NAME] of [ID]. Disc normal.", clean
