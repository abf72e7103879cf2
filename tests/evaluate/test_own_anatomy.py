"""Physiology in regions found in the video itself: passes a real leak, fails broken kinetics and absent signs."""

from __future__ import annotations

import numpy as np

from ffasora.evaluate.own_anatomy import own_anatomy_checks, stated_leak
from ffasora.simulate import simulate_case


def _case(seed: int, diagnosis: str):
    case = simulate_case(seed, size=128, frames=21, diagnosis=diagnosis)
    return case.frames, np.asarray(case.times_s), sorted(case.findings.codes())


def test_stated_leak_takes_primary_leakage_codes_only():
    assert stated_leak(["MA", "CSC_LEAK", "DISC_LEAK"]) == "CSC_LEAK"  # microaneurysms are IV first
    assert stated_leak(["NORMAL"]) is None


def test_leak_found_in_the_video_grows_and_broken_kinetics_fail():
    frames, t, codes = _case(5, "CSC")
    assert stated_leak(codes) is not None
    r = own_anatomy_checks(frames, t, codes)
    assert r["leakage_growth"] is True
    assert r["arterial_before_venous"] is None and r["nonperfusion_dark"] is None  # not estimated here
    assert own_anatomy_checks(frames[::-1].copy(), t, codes)["leakage_growth"] is False
    frozen = np.repeat(frames[12:13], len(frames), axis=0)
    assert own_anatomy_checks(frozen, t, codes)["leakage_growth"] is False


def test_a_leak_the_video_does_not_show_fails():
    frames, t, codes = _case(2, "normal")
    assert own_anatomy_checks(frames, t, codes)["leakage_growth"] is None  # nothing stated, nothing checked
    assert own_anatomy_checks(frames, t, ["LEAK_FOCAL"])["leakage_growth"] is False
