"""The compact code form: exact round trip, canonical text, readable reference example, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from ffasora.findings import Diagnosis, Extent, Finding, Findings, from_compact, to_compact
from ffasora.findings.ontology import (
    CERTAINTIES,
    COUNT_BUCKETS,
    EVOLUTIONS,
    FINDING_CODES,
    LOCATIONS,
    PHASES,
    SEVERITIES,
)
from ffasora.findings.sampling import random_findings


def test_compact_round_trip_is_exact_on_random_findings() -> None:
    rng = np.random.default_rng(7)
    for _ in range(2000):
        f = random_findings(rng)
        text = to_compact(f)
        assert from_compact(text) == f, text
        assert to_compact(from_compact(text)) == text


def test_reference_example_reads_back() -> None:
    text = "OD|MA(numerous;posterior_pole,temporal;early_AV;stable)|NPA(6DA;inferotemporal,mid_periphery)||DX:DR(PDR)+DME(cystoid)"
    f = from_compact(text)
    assert f.eye == "OD" and [x.code for x in f.present] == ["MA", "NPA"]
    ma, npa = f.present
    assert ma.count_bucket == "numerous" and ma.location == ("posterior_pole", "temporal")
    assert ma.onset_phase == "early_AV" and ma.evolution == "stable"
    assert npa.extent == Extent(6.0, "DA") and npa.location == ("inferotemporal", "mid_periphery")
    assert f.diagnoses == (Diagnosis("DR", "PDR"), Diagnosis("DME", "cystoid"))
    # canonical order puts the location before the extent
    assert to_compact(f).startswith(
        "OD|MA(posterior_pole,temporal;early_AV;stable;numerous)|NPA(inferotemporal"
    )


def test_negatives_arm_retina_and_suspected_are_kept() -> None:
    f = Findings(
        "OS",
        (Finding("CSC_LEAK", certainty="suspected", subtype="smokestack", extent=Extent(0.25, "DD")),),
        frozenset({"NVD", "CME"}),
        (Diagnosis("CSC", "acute"),),
        arm_retina_s=12.5,
    )
    text = to_compact(f)
    assert text == "OS|AR:12.5|CSC_LEAK(0.25DD;suspected;smokestack)|NO:CME,NVD||DX:CSC(acute)"
    assert from_compact(text) == f


def test_attribute_vocabularies_are_disjoint() -> None:
    """The compact form reads attributes by vocabulary, which needs the value sets not to overlap."""
    subtypes = {s for c in FINDING_CODES.values() for s in c.subtypes}
    sets = [
        set(LOCATIONS),
        set(PHASES),
        set(EVOLUTIONS),
        set(COUNT_BUCKETS),
        set(SEVERITIES),
        set(CERTAINTIES),
        subtypes,
    ]
    for i, a in enumerate(sets):
        for b in sets[i + 1 :]:
            assert not a & b


@pytest.mark.parametrize(
    "bad",
    ["OD|NOPE", "OD|MA(numerous;numerous)", "OD|MA(bogus)", "OD|MA||XX:DR", "XX|MA", "OD|MA||DX:DR(grade9)"],
)
def test_bad_compact_text_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        from_compact(bad)
