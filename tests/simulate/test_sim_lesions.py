"""Lesion kinetics: leaks and pools only grow, pools stay in their compartment, window defects fade late,
non-perfusion stays dark, blockage stays dark (design reference §6.8, items 9-14)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ffasora.simulate import radiometric_series, simulate_case

TIMES = np.array(
    [8.0, 11.0, 13.0, 15.0, 18.0, 22.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 450.0, 600.0]
)


def ring(mask: np.ndarray, width: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, iterations=width) & ~mask


@pytest.mark.parametrize(
    ("diagnosis", "code"),
    [
        ("DR:PDR", "NVE"),
        ("DME:focal", "LEAK_FOCAL"),
        ("uveitis", "DISC_LEAK"),
        ("nAMD:classic", "CNV_CLASSIC"),
    ],
)
def test_leakage_area_and_intensity_never_shrink(diagnosis: str, code: str) -> None:
    frames, masks, info = radiometric_series(11, TIMES, size=128, diagnosis=diagnosis, signs=(code,))
    assert code in info["findings"].codes()
    per_frame = masks[f"lesion_{code}_t"]
    area = per_frame.reshape(len(TIMES), -1).sum(1)
    assert area[-1] > 0
    assert np.all(np.diff(area) >= 0), area
    region = masks[f"lesion_{code}"]
    late = frames[TIMES >= 60.0][:, region].mean(1)
    assert late[-1] > 0 and np.all(np.diff(late) > -0.05 * late.max()), late  # no late fading beyond noise


@pytest.mark.parametrize(
    ("diagnosis", "code"),
    [("CSC:acute", "CSC_LEAK"), ("CSC:acute", "POOL_SRD"), ("CSC:chronic", "POOL_PED"), ("BRVO", "CME")],
)
def test_pooling_grows_inside_its_compartment(diagnosis: str, code: str) -> None:
    _, masks, info = radiometric_series(12, TIMES, size=128, diagnosis=diagnosis, signs=(code,))
    assert code in info["findings"].codes()
    per_frame = masks[f"lesion_{code}_t"]
    compartment = masks[f"compartment_{code}"]
    area = per_frame.reshape(len(TIMES), -1).sum(1)
    assert np.all(np.diff(area) >= 0), area
    assert area[-1] > 0
    assert not np.any(per_frame & ~compartment[None])
    if code in ("POOL_SRD", "POOL_PED"):
        assert area[-1] >= 0.8 * (compartment & masks["fov"]).sum()  # fills the detachment (§6.8 #10)


def test_window_defect_fades_late_relative_to_its_peak() -> None:
    frames, masks, _ = radiometric_series(13, TIMES, size=128, diagnosis="dryAMD:GA")
    lesion = masks["lesion_WINDOW_DEFECT"]
    inside = frames[:, lesion].mean(1)
    around = frames[:, ring(lesion, 3) & masks["fov"]].mean(1)
    peak = int(np.argmax(inside))
    assert TIMES[peak] < 60.0
    assert inside[-1] <= 0.6 * inside[peak]
    contrast = inside - around
    assert contrast[peak] > 0
    assert contrast[-1] <= 1.1 * contrast[peak]


def test_nonperfusion_stays_dark_after_arterial_filling() -> None:
    frames, masks, info = radiometric_series(14, TIMES, size=128, diagnosis="BRVO:ischemic")
    assert "NPA" in info["findings"].codes()
    npa = masks["lesion_NPA"]
    after = info["timing"]["arm_retina_s"] + 2.0 <= TIMES
    inside = frames[after][:, npa].mean(1)
    around = frames[after][:, ring(npa, 4) & masks["fov"]].mean(1)
    assert np.all(inside < 0.8 * around), (inside, around)


def test_blocked_fluorescence_is_dark_in_every_frame() -> None:
    frames, masks, _ = radiometric_series(15, TIMES, size=128, diagnosis="BRVO", signs=("HEME_BLOCK",))
    heme = masks["lesion_HEME_BLOCK"]
    inside = frames[2:, heme].mean(1)
    around = frames[2:, ring(heme, 2) & masks["fov"] & ~masks["vessels_art"] & ~masks["vessels_vein"]].mean(1)
    assert np.all(inside < 0.8 * around)


def test_display_video_shows_the_leak_growing() -> None:
    case = simulate_case(16, size=128, frames=21, diagnosis="DR:PDR", signs=("NVE",), eye="OS")
    region = case.masks["lesion_NVE"]
    video = case.frames.astype(np.float64)
    third = len(video) // 3
    assert video[-third:, region].mean() > video[:third, region].mean()


def _csc(subtype: str) -> tuple[np.ndarray, np.ndarray]:
    for seed in range(40):
        _, masks, info = radiometric_series(seed, TIMES, size=128, diagnosis="CSC:acute", signs=("CSC_LEAK",))
        if any(f.code == "CSC_LEAK" and f.subtype == subtype for f in info["findings"].present):
            return masks["lesion_CSC_LEAK_t"], masks["compartment_CSC_LEAK"]
    raise AssertionError(f"no {subtype} CSC leak in 40 seeds")


def test_csc_ink_blot_grows_about_a_fixed_point() -> None:
    per_frame, _ = _csc("ink_blot")
    shown = [k for k in range(len(TIMES)) if per_frame[k].sum() >= 3]
    first, last = shown[0], shown[-1]
    centre = [np.argwhere(per_frame[k]).mean(0) for k in (first, last)]
    assert per_frame[last].sum() > per_frame[first].sum()
    assert np.hypot(*(centre[1] - centre[0])) < 0.25 * np.sqrt(per_frame[last].sum())


def test_csc_smokestack_rises_before_it_spreads() -> None:
    per_frame, _ = _csc("smokestack")
    shown = [k for k in range(len(TIMES)) if per_frame[k].sum() >= 2]
    top = [np.nonzero(per_frame[k])[0].min() for k in shown]
    width = [np.ptp(np.nonzero(per_frame[k])[1]) for k in shown]
    assert top[-1] < top[0]  # the plume climbs (image -y)
    assert width[0] <= 3 and width[-1] > 2 * width[0] + 2  # ... then spreads under the top
