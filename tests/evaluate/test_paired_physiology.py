"""Physiology checks of videos paired with a simulated eye, inside its own masks, and their three controls."""

from __future__ import annotations

import numpy as np
import pytest

from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.evaluate.paired_physiology import (
    applicable,
    check_videos,
    control_videos,
    other_anatomy_donors,
    overall,
    pass_summary,
)
from ffasora.evaluate.photo import PairedEye, paired_eyes


@pytest.fixture(scope="module")
def eyes(tmp_path_factory: pytest.TempPathFactory) -> list[PairedEye]:
    # 128 px: below it the simulator's artery and vein maps are too thin to survive, and the
    # arterial-before-venous check has nothing to measure
    root = tmp_path_factory.mktemp("paired_physiology") / "ds"
    mix = (("CSC", 1.0), ("DR", 1.0), ("BRVO", 1.0))
    simulate_dataset(
        root, SimulateConfig(n=8, size=128, frames=9, seed=5, split_fractions=(0, 0, 1), mix=mix)
    )
    return paired_eyes(root)


def _controls(eyes: list[PairedEye]) -> dict[str, dict]:
    masks, times = [e.masks for e in eyes], [e.times for e in eyes]
    reference = check_videos([e.frames for e in eyes], masks, times)
    donors = other_anatomy_donors([applicable(r) for r in reference], [e.frames.shape for e in eyes])
    videos = control_videos([e.frames for e in eyes], donors)
    return {
        name: pass_summary(
            [
                None if v is None else check_videos([v], [m], [t])[0]
                for v, m, t in zip(vs, masks, times, strict=True)
            ]
        )
        for name, vs in videos.items()
    }


def test_reference_passes_and_time_reversal_breaks_the_order(eyes: list[PairedEye]) -> None:
    table = _controls(eyes)
    ref, rev = table["reference"], table["time_reversed"]
    assert ref["arterial_before_venous"]["n"] == 8 and ref["leakage_growth"]["n"] >= 3
    assert ref["arterial_before_venous"]["pass_rate"] >= 0.85 and ref["leakage_growth"]["pass_rate"] == 1.0
    assert ref["overall"]["pass_rate"] >= 0.85
    # the same eyes and masks played backwards: veins fill first and leaks shrink
    assert rev["arterial_before_venous"]["pass_rate"] <= 0.25 and rev["leakage_growth"]["pass_rate"] == 0.0
    assert rev["overall"]["pass_rate"] <= 0.25


def test_other_anatomy_scores_below_the_reference(eyes: list[PairedEye]) -> None:
    table = _controls(eyes)
    assert table["other_anatomy"]["overall"]["n"] == table["reference"]["overall"]["n"] == 8
    assert table["other_anatomy"]["overall"]["pass_rate"] <= table["reference"]["overall"]["pass_rate"] - 0.25


def test_donors_are_other_eyes_with_the_same_checks_and_shape() -> None:
    leak, npa, both = frozenset({"leakage_growth"}), frozenset({"nonperfusion_dark"}), frozenset()
    shapes = [(9, 8, 8)] * 4
    assert other_anatomy_donors([leak, npa, leak, npa], shapes) == [2, 3, 0, 1]
    assert other_anatomy_donors([leak, both, npa], shapes[:3]) == [1, 2, 1]  # no match: fewest differences
    assert other_anatomy_donors([leak, leak], [(9, 8, 8), (9, 4, 4)]) == [None, None]
    frames = [np.arange(9, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8) + k for k in (0, 50)]
    videos = control_videos(frames, [1, None])
    assert videos["other_anatomy"][0] is frames[1] and videos["other_anatomy"][1] is None
    assert (videos["time_reversed"][0][:, 0, 0] == np.arange(9)[::-1]).all()


def test_pass_summary_counts_only_applicable_checks() -> None:
    results = [
        {"arterial_before_venous": True, "leakage_growth": False},
        {"arterial_before_venous": True, "leakage_growth": None},
        {"arterial_before_venous": None},
        None,  # a control without a donor
    ]
    assert [overall(r) for r in results[:3]] == [False, True, None]
    summary = pass_summary(results)
    assert summary["arterial_before_venous"] | {"ci95": None} == {
        "n": 2,
        "passed": 2,
        "pass_rate": 1.0,
        "ci95": None,
    }
    assert summary["leakage_growth"]["pass_rate"] == 0.0 and summary["nonperfusion_dark"]["n"] == 0
    assert (
        summary["overall"]["n"] == 2 and summary["overall"]["pass_rate"] == 0.5 and summary["no_check"] == 1
    )
    low, high = summary["overall"]["ci95"]
    assert 0.0 < low < 0.5 < high < 1.0
