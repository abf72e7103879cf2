"""writer -> parser recovers what was written, on random findings in English and Chinese.

Recovered: present and negated codes, eye, diagnoses with grades, arm-to-retina time, and per sign its
location set, onset phase, evolution, count bucket, extent (value and unit), severity, certainty and subtype.
"""

from __future__ import annotations

import numpy as np
import pytest

from ffasora.findings import Findings, parse_report, to_compact, write_report
from ffasora.findings.sampling import random_findings


def _key(f: Findings) -> dict[str, tuple[object, ...]]:
    return {
        x.code: (
            frozenset(x.location),
            x.onset_phase,
            x.evolution,
            x.extent,
            x.count_bucket,
            x.severity,
            x.certainty,
            x.subtype,
        )
        for x in f.present
    }


def _check(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    failures = []
    for i in range(n):
        truth = random_findings(rng)
        for lang in ("en", "zh"):
            text = write_report(truth, lang, seed=i)
            got = parse_report(text)
            same = (
                got.eye == truth.eye
                and got.codes() == truth.codes()
                and got.negated() == truth.negated()
                and set(got.diagnoses) == set(truth.diagnoses)
                and got.arm_retina_s == truth.arm_retina_s
                and _key(got) == _key(truth)
            )
            if not same:
                failures.append(f"{lang}: {to_compact(truth)}\n{text}\n-> {to_compact(got)}")
    assert not failures, f"{len(failures)} of {2 * n} reports differ; first:\n" + "\n\n".join(failures[:3])


def test_round_trip_4000_cases_both_languages() -> None:
    """8,000 reports written and parsed; the 30,000-case run below is marked slow."""
    _check(4_000, seed=2024)


@pytest.mark.slow
def test_round_trip_30000_more_cases() -> None:
    _check(30_000, seed=99)
