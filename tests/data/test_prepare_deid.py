"""Report scrubbing over a corpus of 60 reports with planted identifiers, and keyed pseudonyms."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ffasora.data.deid import Scrubber, load_patterns, pseudonym

FIRST = ["John", "Maria", "Wei", "Aisha", "Olga", "Pedro", "Mary-Jane", "Liam", "Sven", "Priya"]
LAST = ["Smith", "Garcia", "Zhang", "Okafor", "Ivanova", "O'Brien", "Nakamura", "Kowalski", "Dubois", "Patel"]
TITLES = ["Mr.", "Mrs", "Ms.", "Dr.", "Prof.", "Miss"]
STREETS = ["Baker Street", "Elm Road", "Harbour View Avenue", "Mill Lane", "Sunset Blvd"]
MONTHS = ["January", "Feb", "March", "Sept", "Nov"]

CLINICAL = [
    "Early arterial phase at 0:14 shows microaneurysms temporal to the fovea.",
    "Hyperfluorescent leakage increasing to late phase (10 min), 2 DD superotemporal.",
    "Capillary non-perfusion over 5 disc areas; no NVD, no NVE.",
    "Arm-retina time 12.5 s; laser scars inferiorly.",
]


def _identifiers(k: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(text to plant, the identifying value that must not survive) for report k."""
    first, last = FIRST[k % 10], LAST[(k * 3) % 10]
    title = TITLES[k % len(TITLES)]
    mrn = str(rng.integers(10**6, 10**9))
    y, m, d = int(rng.integers(1930, 2025)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    dates = [
        f"{y}-{m:02d}-{d:02d}",
        f"{d:02d}/{m:02d}/{y}",
        f"{d} {MONTHS[k % 5]} {y}",
        f"{MONTHS[k % 5]} {d}, {y}",
        f"{d}.{m}.{y % 100:02d}",
    ]
    phone = [
        f"(0{rng.integers(10, 99)}) {rng.integers(100, 999)}-{rng.integers(1000, 9999)}",
        f"+44 20 {rng.integers(1000, 9999)} {rng.integers(1000, 9999)}",
        f"555-{rng.integers(100, 999)}-{rng.integers(1000, 9999)}",
    ][k % 3]
    number = int(rng.integers(1, 999))
    address = [
        f"{number} {STREETS[k % 5]}",
        f"SW1A {rng.integers(1, 9)}AA",
        f"CA {rng.integers(10000, 99999)}",
    ][k % 3]
    age = int(rng.integers(90, 104))
    age_text = [f"{age}-year-old", f"aged {age}", f"{age} yo"][k % 3]
    name_text = [f"{title} {first} {last}", f"Patient: {first} {last}", f"Name: {last}, {first}"][k % 3]
    name_values = [first, last] if k % 3 != 2 else [last]
    record = [f"MRN: {mrn}", f"Hospital No. {mrn}", f"ID#{mrn}", f"accession {mrn}"][k % 4]
    return [(name_text, v) for v in name_values] + [
        (record, mrn),
        (f"examined on {dates[k % 5]}", dates[k % 5]),
        (f"tel {phone}", phone),
        (f"lives at {address}", address),
        (age_text, str(age)),
        (f"email {first.lower()}.{last.lower()}@clinic.org", f"{first.lower()}.{last.lower()}@clinic.org"),
    ]


def corpus(n: int = 60) -> list[tuple[str, list[str]]]:
    rng = np.random.default_rng(0)
    reports = []
    for k in range(n):
        planted = _identifiers(k, rng)
        parts = [CLINICAL[k % 4], *(text for text, _ in dict.fromkeys(planted)), CLINICAL[(k + 1) % 4]]
        order = rng.permutation(len(parts) - 2) + 1
        text = " ".join([parts[0], *(parts[i] + "." for i in order), parts[-1]])
        reports.append((text, [value for _, value in planted]))
    zh = [
        (
            "姓名：王伟，住院号 88234571，2023年5月12日检查，92岁。早期可见微血管瘤。",
            ["王伟", "88234571", "2023年5月12日", "92岁"],
        )
    ]
    return reports + zh


def test_no_planted_identifier_survives_in_sixty_reports() -> None:
    scrubber = Scrubber.build()
    reports = corpus()
    assert len(reports) >= 50
    leaks = []
    for text, values in reports:
        clean, counts = scrubber.scrub(text)
        assert sum(counts.values()) >= len(set(values)) - 1
        for value in values:
            if value.lower() in clean.lower():
                leaks.append((value, clean))
        for digits in re.findall(r"\d{5,}", text):
            if digits in clean:
                leaks.append((digits, clean))
    assert not leaks, "\n".join(f"{v!r} in {c!r}" for v, c in leaks[:6])


def test_clinical_content_survives_scrubbing() -> None:
    scrubber = Scrubber.build()
    for sentence in [*CLINICAL, "NORMAL fluorescein angiogram. No leakage. Aged 67, 45-year-old control."]:
        clean, counts = scrubber.scrub(sentence)
        assert clean == sentence, (sentence, clean, counts)


def test_known_identifiers_are_removed_literally_and_patterns_extend(tmp_path: Path) -> None:
    clean, counts = Scrubber.build().scrub("Seen for follow-up of QX-77, patient qx-77 stable.", ["QX-77"])
    assert "77" not in clean and counts["ID"] == 2
    patterns = tmp_path / "extra.txt"
    patterns.write_text("# ward names\nWARD (?i:rose ward|ward 7b)\n\nSITE St\\. Elsewhere Hospital\n")
    extra = load_patterns(patterns)
    clean, counts = Scrubber.build(extra).scrub("Admitted to Rose Ward at St. Elsewhere Hospital.")
    assert clean == "Admitted to [WARD] at [SITE]." and counts == {"WARD": 1, "SITE": 1}
    patterns.write_text("BROKEN (unclosed\n")
    with pytest.raises(ValueError, match="BROKEN"):
        load_patterns(patterns)


def test_pseudonyms_are_stable_keyed_and_distinct() -> None:
    a, b = b"k" * 32, b"j" * 32
    assert pseudonym("MRN1", a, "p-") == pseudonym("MRN1", a, "p-")
    assert pseudonym("MRN1", a, "p-") != pseudonym("MRN1", b, "p-")
    assert len({pseudonym(f"MRN{i}", a, "p-", 10) for i in range(1000)}) == 1000
    assert "MRN1" not in pseudonym("MRN1", a, "p-")
