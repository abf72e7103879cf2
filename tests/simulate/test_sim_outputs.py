"""Output contract of simulate_case: laterality, determinism, samplers, shapes and metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffasora.findings.ontology import PHASES
from ffasora.simulate import SAMPLERS, simulate_case
from ffasora.simulate.anatomy import build_anatomy
from ffasora.simulate.sampling import make_schedule


@pytest.mark.parametrize("seed", [0, 7])
def test_right_eye_disc_on_the_right_left_eye_on_the_left(seed: int) -> None:
    for eye, right in (("OD", True), ("OS", False)):
        case = simulate_case(seed, size=64, frames=5, eye=eye, diagnosis="normal")
        _, cols = np.nonzero(case.masks["disc"])
        disc_x = cols.mean()
        assert (disc_x > 32) == right
        assert (case.anatomy["disc_center_px"][0] > case.anatomy["fovea_px"][0]) == right
        assert abs(disc_x - case.anatomy["disc_center_px"][0]) < 3
        late = case.frames[-1].astype(float)  # the disc rim stains late: brighter on the disc's side
        half = late[:, 32:].mean() - late[:, :32].mean()
        assert (half > 0) == right or abs(half) < 2


def test_same_seed_same_bytes_different_seed_differs() -> None:
    a = simulate_case(5, size=64, frames=5)
    b = simulate_case(5, size=64, frames=5)
    c = simulate_case(6, size=64, frames=5)
    assert a.frames.tobytes() == b.frames.tobytes()
    assert a.report == b.report and a.report_zh == b.report_zh
    assert a.masks.keys() == b.masks.keys()
    assert all(np.array_equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert json.dumps(a.meta()) == json.dumps(b.meta())
    assert a.frames.tobytes() != c.frames.tobytes()


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("frames", [1, 5, 9, 17, 21, 33])
def test_every_sampler_gives_the_requested_count_with_increasing_times(sampler: str, frames: int) -> None:
    rng = np.random.default_rng(frames)
    schedule = make_schedule(sampler, rng, 12.0, frames)
    assert len(schedule.out_times) == frames
    assert np.all(np.diff(schedule.out_times) > 0)
    assert np.all(np.diff(schedule.times) > 0)
    assert schedule.out_times[0] > 0 and schedule.out_times[-1] <= 700


def test_canonical_schedule_is_g21() -> None:
    schedule = make_schedule("canonical", np.random.default_rng(0), 12.0, 21)
    np.testing.assert_allclose(schedule.out_times[:3], [10.0, 11.0, 12.0])
    np.testing.assert_allclose(schedule.out_times[-3:], [300.0, 450.0, 600.0])


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_rendered_samplers_give_frames_times_phases_and_masks(sampler: str) -> None:
    case = simulate_case(2, size=64, frames=9, sampler=sampler, diagnosis="CSC:acute", signs=("POOL_SRD",))
    assert case.frames.shape == (9, 64, 64) and case.frames.dtype == np.uint8
    assert case.times_s.shape == (9,) and np.all(np.diff(case.times_s) > 0)
    assert len(case.phases) == 9 and set(case.phases) <= set(PHASES)
    order = [PHASES.index(p) for p in case.phases]
    assert order == sorted(order)
    assert case.masks["lesion_POOL_SRD_t"].shape == (9, 64, 64)
    assert not case.frames[:, ~case.masks["fov"]].any()
    assert (sampler == "index_linear") == (case.source_times_s is not None)


def test_bad_frame_count_and_sampler_are_rejected() -> None:
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        simulate_case(0, size=64, frames=20)
    with pytest.raises(ValueError, match="sampler"):
        simulate_case(0, size=64, frames=5, sampler="weekly")


def test_metadata_is_json_ready_and_names_the_timing() -> None:
    case = simulate_case(8, size=64, frames=5, diagnosis="DR:PDR")
    meta = json.loads(json.dumps(case.meta()))
    for key in ("arm_retina_s", "choroid_lead_s", "av_passage_s", "venous_mtt_s"):
        assert key in meta["timing"] and key in case.kinetics
    assert meta["frames"]["t_s"] == [round(float(t), 4) for t in case.times_s]
    assert {"disc_center_px", "disc_radius_px", "fovea_px"} <= set(case.anatomy)
    assert {f["code"] for f in meta["findings"]} == case.findings.codes()
    assert meta["diagnoses"][0]["code"] == "DR"


@pytest.mark.parametrize("seed", [0, 1])
def test_vessel_area_fraction_and_faz_are_anatomical(seed: int) -> None:
    an = build_anatomy(np.random.default_rng(seed), 512)  # at 512 px, as the §2.3 figure is measured
    vessels = ((an.art.weight > 0.3) | (an.vein.weight > 0.3)) & an.fov
    assert 0.05 <= vessels.sum() / an.fov.sum() <= 0.16  # §2.3: about 7-14 % of the field
    assert an.faz.any() and not (vessels & an.faz).any()  # no vessel crosses the avascular zone
    assert an.capillary[an.faz].max() == 0.0


def test_index_linear_frames_are_cross_fades_of_rendered_frames() -> None:
    case = simulate_case(9, size=64, frames=21, sampler="index_linear", diagnosis="normal", motion=False)
    assert case.source_times_s is not None
    src = case.source_times_s
    inside = (case.times_s >= src[0] - 1e-9) & (case.times_s <= src[-1] + 1e-9)
    assert inside.all()
    # FFA-Sora's standardisation: output times are linear in frame index, not in physical time
    idx = np.linspace(0, len(src) - 1, 21)
    np.testing.assert_allclose(case.times_s, np.interp(idx, np.arange(len(src)), src))
