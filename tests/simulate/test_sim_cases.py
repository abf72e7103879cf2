"""Case planning and findings: every simulated code is producible and lands in findings and masks; the
disease mix draws ontology diagnoses; reports come from what was rendered."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ffasora.findings import DIAGNOSIS_CODES, FINDING_CODES
from ffasora.simulate import BUILDERS, simulate_case
from ffasora.simulate.anatomy import build_anatomy
from ffasora.simulate.cases import parse_mix, plan_case
from ffasora.simulate.catalog import Ctx, build_lesion
from ffasora.simulate.kinetics import sample_timing
from ffasora.simulate.lesions import Lesion
from ffasora.simulate.measure import measure_findings

# a diagnosis in which each sign occurs (design reference §3.2), used to force it
HOME = {
    "ART_DELAY": "RAO",
    "VEN_DELAY": "BRVO",
    "CHOR_FILL_DEFECT": "other",
    "MA": "DR",
    "HEME_BLOCK": "BRVO",
    "EXUDATE_BLOCK": "Coats",
    "PIGMENT_BLOCK": "CSC:chronic",
    "NPA": "DR:severe_NPDR",
    "FAZ_ENLARGED": "DR:PDR",
    "IRMA": "DR:severe_NPDR",
    "VENOUS_BEADING": "DR:severe_NPDR",
    "VEIN_DILATED_TORTUOUS": "CRVO",
    "COLLATERAL": "BRVO",
    "NVD": "DR:PDR",
    "NVE": "DR:PDR",
    "TELANGIECTASIA": "Coats",
    "MACROANEURYSM": "other",
    "LEAK_FOCAL": "DME:focal",
    "LEAK_DIFFUSE": "DME:diffuse",
    "CME": "DME:cystoid",
    "CSC_LEAK": "CSC:acute",
    "POOL_SRD": "CSC:acute",
    "POOL_PED": "CSC:acute",
    "CNV_CLASSIC": "nAMD:classic",
    "CNV_OCCULT": "nAMD:occult",
    "VESSEL_WALL_STAIN": "uveitis",
    "CAPILLARY_LEAK": "uveitis",
    "PINPOINT_LEAKS": "uveitis:VKH",
    "DISC_LEAK": "CRVO",
    "STAIN_SCAR": "nAMD",
    "DRUSEN": "dryAMD",
    "WINDOW_DEFECT": "dryAMD:GA",
    "LASER_SCARS": "DR:PDR",
}


def test_the_simulator_covers_at_least_24_ontology_codes() -> None:
    assert set(BUILDERS) <= set(FINDING_CODES)
    assert len(BUILDERS) >= 24
    assert set(HOME) == set(BUILDERS)


@pytest.mark.parametrize("code", sorted(BUILDERS))
def test_each_code_can_be_produced_and_appears_in_findings_and_masks(code: str) -> None:
    for seed in range(3):  # a lesion placed outside the field is (rightly) not reported; try another seed
        case = simulate_case(seed, size=64, frames=5, diagnosis=HOME[code], signs=(code,))
        if code in case.findings.codes():
            break
    assert code in case.findings.codes()
    assert case.masks[f"lesion_{code}"].shape == (64, 64)
    assert case.masks[f"lesion_{code}"].any()
    assert not (case.findings.codes() & case.findings.negated())


def test_disease_mix_draws_ontology_diagnoses_with_their_signs() -> None:
    rng = np.random.default_rng(0)
    plans = [plan_case(rng) for _ in range(400)]
    counts = Counter(p.diagnoses[0].code if p.diagnoses else "other" for p in plans)
    assert counts["DR"] > counts["CSC"] > counts["Coats"]
    for p in plans:
        for d in p.diagnoses:
            assert d.code in DIAGNOSIS_CODES
        codes = set(p.codes())
        if any(d.code == "DR" and d.grade == "PDR" for d in p.diagnoses):
            assert codes & {"NVD", "NVE"}  # PDR => NVD or NVE (§6.6)
        if any(d.code == "RAO" for d in p.diagnoses):
            assert "ART_DELAY" in codes and not codes & {"LEAK_FOCAL", "LEAK_DIFFUSE", "DISC_LEAK"}
        if any(d.code == "normal" for d in p.diagnoses):
            assert not codes


def test_a_cohort_mix_draws_only_its_diagnoses_in_its_proportions() -> None:
    mix = parse_mix("BRVO=3, CRVO=1, DR:PDR=1")
    rng = np.random.default_rng(1)
    plans = [plan_case(rng, mix=mix) for _ in range(500)]
    counts = Counter(p.diagnoses[0].code for p in plans)
    assert set(counts) == {"BRVO", "CRVO", "DR"}
    assert 0.52 < counts["BRVO"] / 500 < 0.68 and 0.12 < counts["CRVO"] / 500 < 0.28
    assert all(p.diagnoses[0].grade == "PDR" for p in plans if p.diagnoses[0].code == "DR")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("BRVO", "expected DIAGNOSIS=WEIGHT"),
        ("=1", "expected DIAGNOSIS=WEIGHT"),
        ("flu=1", "unknown diagnosis 'flu'"),
        ("DR:terrible=1", "grade 'terrible'"),
        ("BRVO=0", "finite number > 0"),
        ("BRVO=nan", "finite number > 0"),
        ("BRVO=lots", "'lots' is not a number"),
        ("BRVO=1,BRVO=2", "appears twice"),
    ],
)
def test_a_bad_cohort_mix_is_refused_naming_the_part(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mix(text)


def test_bad_diagnosis_and_sign_are_rejected() -> None:
    with pytest.raises(ValueError, match="diagnosis"):
        simulate_case(0, size=64, frames=5, diagnosis="flu")
    with pytest.raises(ValueError, match="grade"):
        simulate_case(0, size=64, frames=5, diagnosis="DR:terrible")
    with pytest.raises(ValueError, match="signs"):
        simulate_case(0, size=64, frames=5, signs=("NOT_A_CODE",))


def test_a_lesion_outside_the_field_is_not_reported() -> None:
    rng = np.random.default_rng(1)
    an = build_anatomy(rng, 64)
    timing = sample_timing(rng)
    inside = build_lesion(Ctx(an, rng, timing), "DISC_LEAK", {})
    outside = Lesion("MA", "IV", ~an.fov, timing.arm_retina_s)
    findings, shown = measure_findings(an, timing, [inside, outside], [], "OD", rng)
    assert shown == [True, False]
    assert findings.codes() == {"DISC_LEAK"}
    assert "MA" not in findings.codes()


def test_normal_case_reports_normal_with_negatives() -> None:
    case = simulate_case(3, size=64, frames=5, diagnosis="normal")
    assert case.findings.codes() == {"NORMAL"}
    assert case.findings.negated()
    assert [d.code for d in case.findings.diagnoses] == ["normal"]
    assert case.report and case.report_zh
    assert not [k for k in case.masks if k.startswith("lesion_")]


@pytest.mark.parametrize(
    ("sectors", "named"),
    [
        (("inferotemporal",), ("inferotemporal",)),
        (("superotemporal", "inferotemporal"), ("temporal",)),
        (("superotemporal", "inferonasal"), ("superotemporal", "inferonasal")),
        (("superotemporal", "inferotemporal", "superonasal", "inferonasal"), ()),
    ],
)
def test_a_report_names_the_quadrants_that_hold_a_non_perfused_area(
    sectors: tuple[str, ...], named: tuple[str, ...]
) -> None:
    """Readers localise non-perfusion ("in the temporal mid-periphery"); a region over two quadrants is not
    reported by its zone alone, or a photograph-guided model could not know where to draw it."""
    rng = np.random.default_rng(4)
    an = build_anatomy(rng, 128)
    timing = sample_timing(rng)
    npa = build_lesion(Ctx(an, rng, timing), "NPA", {"area_da": 12.0, "sectors": sectors})
    findings, _ = measure_findings(an, timing, [npa], [], "OD", rng)
    (finding,) = [f for f in findings.present if f.code == "NPA"]
    assert finding.location[1:] == named
    assert finding.location[0] in ("posterior_pole", "mid_periphery")
