"""The report writer: deterministic per seed, varied across seeds, phase-ordered, laterality-aware."""

from __future__ import annotations

import numpy as np
import pytest

from ffasora.findings import Diagnosis, Extent, Finding, Findings, write_report
from ffasora.findings.lexicon import FINDING_PATTERNS, Matcher
from ffasora.findings.sampling import random_findings

CASE = Findings(
    "OS",
    (
        Finding("CME", location=("macula",), onset_phase="late", evolution="increasing"),
        Finding(
            "MA", location=("posterior_pole", "temporal"), onset_phase="early_AV", count_bucket="numerous"
        ),
        Finding(
            "NPA",
            location=("inferotemporal", "mid_periphery"),
            onset_phase="late_AV",
            extent=Extent(6.0, "DA"),
        ),
        Finding("HEME_BLOCK", onset_phase="choroidal", subtype="blot"),
    ),
    frozenset({"DISC_LEAK", "NVD"}),
    (Diagnosis("DR", "severe_NPDR"), Diagnosis("DME", "cystoid")),
    arm_retina_s=13.0,
)
_NAMES = Matcher(FINDING_PATTERNS)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_same_seed_same_text_and_seeds_vary(lang: str) -> None:
    assert write_report(CASE, lang, seed=3) == write_report(CASE, lang, seed=3)
    texts = {write_report(CASE, lang, seed=s) for s in range(20)}
    assert len(texts) >= 15


@pytest.mark.parametrize(("lang", "expected"), [("en", 3), ("zh", 3)])
def test_several_paraphrases_per_finding(lang: str, expected: int) -> None:
    case = Findings("OD", (Finding("NPA", onset_phase="early_AV"),))
    seen = set()
    for seed in range(60):
        text = write_report(case, lang, seed)
        seen |= {text[m.start : m.end] for m in _NAMES.find(text) if m.label == "NPA"}
    assert len(seen) >= expected, seen


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_signs_appear_in_angiographic_phase_order(lang: str) -> None:
    for seed in range(10):
        text = write_report(CASE, lang, seed)
        order = list(
            dict.fromkeys(m.label for m in _NAMES.find(text) if m.label in ("HEME_BLOCK", "MA", "NPA", "CME"))
        )
        assert order == ["HEME_BLOCK", "MA", "NPA", "CME"], text


def test_laterality_timing_negatives_and_impression_are_written() -> None:
    en = write_report(CASE, "en", 0)
    zh = write_report(CASE, "zh", 0)
    assert any(w in en for w in ("OS", "Left eye", "LE")) and "OD" not in en
    assert "左眼" in zh or "OS" in zh
    assert "13 s" in en or "13 seconds" in en
    assert "13秒" in zh or "13s" in zh
    assert ("Impression:" in en or "Diagnosis:" in en) and ("诊断：" in zh or "印象：" in zh)
    assert "severe" in en
    assert "非增殖" in zh or "NPDR" in zh
    assert any(cue in en for cue in ("No ", "no ")) and any(cue in zh for cue in ("未见", "无"))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_normal_case_gives_a_normal_report(lang: str) -> None:
    f = Findings("OD", (Finding("NORMAL"),), diagnoses=(Diagnosis("normal"),), arm_retina_s=11.0)
    text = write_report(f, lang, 1)
    assert ("abnormal" in text) if lang == "en" else ("异常" in text)
    assert {m.label for m in _NAMES.find(text)} - {"NULL"} == {"NORMAL"}


def test_every_random_case_writes_in_both_languages() -> None:
    rng = np.random.default_rng(0)
    for i in range(300):
        f = random_findings(rng)
        for lang in ("en", "zh"):
            text = write_report(f, lang, i)
            assert text and "{" not in text and "  " not in text


def test_unknown_language_raises() -> None:
    with pytest.raises(ValueError, match="lang"):
        write_report(CASE, "fr")
