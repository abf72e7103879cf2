"""Physiology checks: pass on simulated cases that obey physiology, fail when the physiology is broken."""

from __future__ import annotations

import numpy as np
from evaluate_cases import simulate

from ffasora.evaluate.physiology import half_max_time, lesion_masks, pass_rates, physiology_checks


def _case(diagnosis: str, seed: int = 1):
    case = simulate(seed, size=32, frames=9, diagnosis=diagnosis)
    return case.frames, np.array(case.times_s), case.masks


def test_half_max_time_interpolates():
    assert half_max_time(np.array([0.0, 0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0, 3.0])) == 2.0
    assert half_max_time(np.array([0.0, 2.0]), np.array([0.0, 10.0])) == 5.0


def test_checks_pass_on_physiological_cases():
    frames, t, masks = _case("CSC")
    r = physiology_checks(frames, t, masks)
    assert r["arterial_before_venous"] is True and r["leakage_growth"] is True
    assert r["window_defect_fading"] is None and r["nonperfusion_dark"] is None  # nothing to check
    assert physiology_checks(*_case("dryAMD"))["window_defect_fading"] is True
    assert physiology_checks(*_case("DR"))["nonperfusion_dark"] is True


def test_checks_fail_when_physiology_is_broken():
    frames, t, masks = _case("CSC")
    # swap the vessel masks: veins would fill first
    swapped = {**masks, "vessels_art": masks["vessels_vein"], "vessels_vein": masks["vessels_art"]}
    assert physiology_checks(frames, t, swapped)["arterial_before_venous"] is False
    assert physiology_checks(frames[::-1].copy(), t, masks)["leakage_growth"] is False  # leak shrinks
    frames, t, masks = _case("dryAMD")
    brighter = frames.astype(np.int32)
    brighter[-3:][:, masks["lesion_WINDOW_DEFECT"]] = 250  # the window defect lights up late
    assert physiology_checks(brighter.astype(np.uint8), t, masks)["window_defect_fading"] is False
    frames, t, masks = _case("DR")
    lit = frames.copy()
    lit[:, masks["lesion_NPA"]] = 255
    assert physiology_checks(lit, t, masks)["nonperfusion_dark"] is False


def test_pass_rates_count_only_applicable_checks():
    rates = pass_rates(
        [{"arterial_before_venous": True}, {"arterial_before_venous": False, "leakage_growth": None}]
    )
    assert rates["arterial_before_venous"] == {"n": 2, "pass_rate": 0.5}
    assert rates["leakage_growth"] == {"n": 0, "pass_rate": None}


def test_lesion_masks_match_whole_codes_and_primary_classes():
    mask = np.ones((4, 4), bool)
    leaks = {"lesion_CSC_LEAK": mask, "lesion_CSC_LEAK_t": mask[None], "lesion_MA": mask}
    assert len(lesion_masks(leaks, "LK")) == 2  # microaneurysms (IV+LK) are not judged as leaks
    assert (
        len(lesion_masks({"lesion_MACROANEURYSM": mask, "lesion_MAX": mask}, "IV")) == 1
    )  # "MA" is a prefix
    assert len(lesion_masks({"lesion_DRUSEN": mask, "lesion_WINDOW_DEFECT": mask}, "WD", exclusive=True)) == 1


def _simulated(seed: int, diagnosis: str, signs: tuple[str, ...] = ()):
    from ffasora.simulate import simulate_case

    case = simulate_case(seed, size=128, frames=21, diagnosis=diagnosis, signs=signs)
    return case.frames, np.asarray(case.times_s), case.masks


def test_kinetic_checks_fail_time_reversed_and_frozen_videos():
    """Negative controls: the same frames out of time order must not pass the two kinetic checks."""
    for seed in (5, 7):  # CSC cases with a leak large enough to measure at 128 px
        frames, t, masks = _simulated(seed, "CSC")
        assert physiology_checks(frames, t, masks)["arterial_before_venous"] is True
        assert physiology_checks(frames, t, masks)["leakage_growth"] is True
        reversed_, frozen = frames[::-1].copy(), np.repeat(frames[10:11], len(frames), axis=0)
        for broken in (reversed_, frozen):
            r = physiology_checks(broken, t, masks)
            assert r["arterial_before_venous"] is False and r["leakage_growth"] is False


def test_disc_leakage_grows_although_the_disc_saturates():
    """A leaking disc is near white from the venous phase on while its dye spreads outward: the check must
    count the spread (the old inside-vs-ring contrast failed most simulated disc leaks)."""
    frames, t, masks = _simulated(5, "uveitis", signs=("DISC_LEAK",))
    assert "lesion_DISC_LEAK" in masks
    only_disc = {k: v for k, v in masks.items() if not k.startswith("lesion_") or "DISC_LEAK" in k}
    assert physiology_checks(frames, t, only_disc)["leakage_growth"] is True
