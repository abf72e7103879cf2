"""The paired difference of scripts/bundled_model/findings_f1.py (the number the fine-tuning and sampling docs
quote): records are paired by source id whatever their order, and pooled cohorts keep their records apart."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).parents[2] / "scripts" / "bundled_model" / "findings_f1.py"
spec = importlib.util.spec_from_file_location("findings_f1_script", SCRIPT)
assert spec is not None and spec.loader is not None
findings_f1 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(findings_f1)


def test_the_same_decisions_differ_by_zero_in_any_order() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((30, 4)) < 0.4
    predicted = rng.random((30, 4)) < 0.4
    ids = [f"a/{k}" for k in range(30)]
    order = rng.permutation(30)
    other = ([ids[k] for k in order], truth[order], predicted[order])
    result = findings_f1.paired_difference(ids, truth, predicted, other, resamples=200)
    assert result == {"paired_records": 30, "f1_difference": 0.0, "ci95_low": 0.0, "ci95_high": 0.0}


def test_a_better_folder_is_ahead_with_an_interval_above_zero() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random((60, 3)) < 0.5
    wrong = ~truth
    ids = [f"a/{k}" for k in range(60)]
    result = findings_f1.paired_difference(ids, truth, truth.copy(), (ids, truth, wrong), resamples=200)
    assert result["f1_difference"] == 1.0 and result["ci95_low"] > 0.9


def test_only_records_of_both_folders_are_paired() -> None:
    truth = np.array([[True], [True], [False]])
    ids = ["one/sim-000001", "two/sim-000001", "one/sim-000002"]  # the same id in two pooled cohorts
    other = (["two/sim-000001"], truth[1:2], np.array([[False]]))
    result = findings_f1.paired_difference(ids, truth, truth.copy(), other, resamples=50)
    assert result["paired_records"] == 1 and result["f1_difference"] == 1.0
