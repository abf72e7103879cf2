"""Example reports for the demo, written from sample findings by the report writer (English and Chinese)."""

from __future__ import annotations

from ffasora.findings import Diagnosis, Finding, Findings, write_report

# (label, findings): one common presentation per row, as a teacher would pick them.
EXAMPLE_FINDINGS: tuple[tuple[str, Findings], ...] = (
    (
        "Central serous chorioretinopathy",
        Findings(
            eye="OD",
            present=(
                Finding("CSC_LEAK", location=("macula",), onset_phase="venous", evolution="increasing"),
            ),
            absent=frozenset({"NVD"}),
            diagnoses=(Diagnosis("CSC", "acute"),),
            arm_retina_s=11.0,
        ),
    ),
    (
        "Diabetic retinopathy",
        Findings(
            eye="OS",
            present=(
                Finding("MA", location=("posterior_pole",), onset_phase="arterial", count_bucket="numerous"),
                Finding("NPA", location=("mid_periphery",), onset_phase="venous"),
                Finding("LEAK_DIFFUSE", location=("macula",), onset_phase="mid", evolution="increasing"),
            ),
            absent=frozenset({"NVD", "NVE"}),
            diagnoses=(Diagnosis("DR", "severe_NPDR"),),
            arm_retina_s=13.0,
        ),
    ),
    (
        "Branch retinal vein occlusion",
        Findings(
            eye="OD",
            present=(
                Finding("VEIN_DILATED_TORTUOUS", location=("superotemporal",), onset_phase="venous"),
                Finding("HEME_BLOCK", location=("superotemporal",), onset_phase="arterial"),
            ),
            diagnoses=(Diagnosis("BRVO", "non_ischemic"),),
            arm_retina_s=14.0,
        ),
    ),
    ("Normal angiogram", Findings(eye="OS", present=(Finding("NORMAL"),), diagnoses=(Diagnosis("normal"),))),
)


def example_reports() -> list[dict[str, str]]:
    """``[{"label", "lang", "report"}]``: every example in English, then the first two in Chinese."""
    examples = [
        {"label": label, "lang": "en", "report": write_report(findings, "en", seed=i)}
        for i, (label, findings) in enumerate(EXAMPLE_FINDINGS)
    ]
    examples += [
        {"label": f"{label} (中文)", "lang": "zh", "report": write_report(findings, "zh", seed=i)}
        for i, (label, findings) in enumerate(EXAMPLE_FINDINGS[:2])
    ]
    return examples
