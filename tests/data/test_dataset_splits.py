"""Patient-level splits: no patient in two splits, deterministic, proportional, stratified."""

from __future__ import annotations

from collections import Counter

import pytest

from ffasora.data.splits import assign_splits


def _patients(n: int) -> dict[str, str | None]:
    strata = ["DR", "DR", "DR", "BRVO", "CSC", "normal", None]
    return {f"p{i:04d}": strata[i % len(strata)] for i in range(n)}


def test_split_is_deterministic_order_free_and_seed_dependent():
    patients = _patients(200)
    a = assign_splits(patients, seed=3)
    b = assign_splits(dict(reversed(list(patients.items()))), seed=3)
    assert a == b
    assert set(a) == set(patients)  # every patient gets exactly one split
    assert assign_splits(patients, seed=4) != a


@pytest.mark.parametrize("n", [3, 8, 10, 101, 1000])
def test_split_counts_follow_the_fractions(n):
    counts = Counter(assign_splits(_patients(n), seed=0).values())
    for split, fraction in zip(("train", "val", "test"), (0.8, 0.1, 0.1), strict=True):
        assert abs(counts[split] - fraction * n) <= 1, (n, counts)


def test_split_is_stratified_by_diagnosis():
    patients = _patients(700)
    split = assign_splits(patients, seed=1)
    for stratum in ("DR", "BRVO", None):
        members = [p for p, s in patients.items() if s == stratum]
        share = Counter(split[p] for p in members)
        assert abs(share["test"] / len(members) - 0.1) < 0.02, (stratum, share)


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="fractions"):
        assign_splits({"a": None}, fractions=(0.5, 0.2, 0.2))
