"""Physiology of the simulated dye kinetics, measured on dense camera-free series (design reference §6.8)."""

from __future__ import annotations

import numpy as np
import pytest

from ffasora.evaluate.physiology import half_max_time
from ffasora.simulate import radiometric_series, simulate_case
from ffasora.simulate.kinetics import Curves, plasma_curve, sample_timing

TIMES = np.arange(4.0, 45.0, 0.5)


def test_plasma_curve_has_first_pass_peak_recirculation_and_washout() -> None:
    u = np.arange(0.0, 600.0, 0.05)
    cp = plasma_curve(u)
    assert cp[0] == pytest.approx(0.1, abs=0.02)  # u = 0 is the 10 % leading edge
    assert cp.max() == pytest.approx(1.0, abs=0.05)
    assert 0.2 < cp[u.searchsorted(60.0)] < 0.6  # about 0.3 at one minute
    assert 0.05 < cp[-1] < 0.2  # about 0.1 at ten minutes
    assert np.all(plasma_curve(np.array([-5.0, -0.1])) <= 0.1)


def test_structure_curves_are_ordered_by_dispersion() -> None:
    curves = Curves(sample_timing(np.random.default_rng(0)))
    peak = {name: float(curves.u[np.argmax(getattr(curves, name))]) for name in ("art", "cap", "vein")}
    assert peak["art"] < peak["cap"] < peak["vein"]
    assert np.all(np.diff(curves.integral) >= 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_choroid_before_arteries_before_veins(seed: int) -> None:
    frames, masks, info = radiometric_series(seed, TIMES, size=256, diagnosis="normal")
    t_ar = info["timing"]["arm_retina_s"]
    artery = half_max_time(frames[:, masks["vessels_art"]].mean(1), TIMES)
    vein = half_max_time(frames[:, masks["vessels_vein"]].mean(1), TIMES)
    early = t_ar + 8.0 >= TIMES  # the FAZ has no retinal vessels: its early rise is the choroidal flush
    choroid = half_max_time(frames[early][:, masks["faz"]].mean(1), TIMES[early])
    assert 1.0 <= vein - artery <= 6.0, (artery, vein)
    assert 0.3 <= artery - choroid <= 2.5, (choroid, artery)


def test_display_frames_fill_arteries_before_veins_and_wash_out() -> None:
    case = simulate_case(4, size=256, frames=21, diagnosis="normal", eye="OD")
    video = case.frames.astype(np.float64)
    artery = video[:, case.masks["vessels_art"]].mean(1)
    vein = video[:, case.masks["vessels_vein"]].mean(1)
    assert half_max_time(artery, case.times_s) < half_max_time(vein, case.times_s)
    background = video[:, case.masks["fov"] & ~case.masks["vessels_art"] & ~case.masks["vessels_vein"]].mean(
        1
    )
    contrast = (artery - background) / np.maximum(background, 1.0)
    peak = int(np.argmax(contrast))
    assert case.phases[peak] in ("arterial", "early_AV", "late_AV", "venous")
    assert contrast[-1] < 0.5 * contrast[peak]  # late washout: vessels no brighter than their surround
    assert video[0][case.masks["fov"]].mean() < 0.3 * video[peak][case.masks["fov"]].mean()  # dark early


def test_delayed_venous_filling_in_the_occluded_sector() -> None:
    frames, masks, info = radiometric_series(5, TIMES, size=256, diagnosis="BRVO", signs=("VEN_DELAY",))
    assert "VEN_DELAY" in info["findings"].codes()
    delayed = masks["lesion_VEN_DELAY"] & masks["vessels_vein"]
    normal = masks["vessels_vein"] & ~masks["lesion_VEN_DELAY"]
    assert delayed.sum() > 10 and normal.sum() > 10
    t_delayed = half_max_time(frames[:, delayed].mean(1), TIMES)
    t_normal = half_max_time(frames[:, normal].mean(1), TIMES)
    assert t_delayed - t_normal > 3.0


def test_retinal_artery_occlusion_delays_the_arterial_front() -> None:
    base, m0, _ = radiometric_series(6, TIMES, size=128, diagnosis="normal", eye="OD")
    rao, m1, info = radiometric_series(6, TIMES, size=128, diagnosis="RAO:central", eye="OD")
    assert "ART_DELAY" in info["findings"].codes()
    arteries = m1["lesion_ART_DELAY"] & m1["vessels_art"]
    t_rao = half_max_time(rao[:, arteries].mean(1), TIMES)
    t_base = half_max_time(base[:, m0["vessels_art"]].mean(1), TIMES)
    assert t_rao - t_base >= 5.0
