"""Field detection, crop and mask, temporal resampling, and the vessel-area ratio."""

from __future__ import annotations

import numpy as np
import pytest
from prepare_corpus import LABEL_VALUE, angiogram, clinical_times, field_geometry

from ffasora.data.quality import vessel_area_ratio
from ffasora.data.standardise import Circle, crop_to_field, detect_field, disc_mask, resample_time, to_uint8


@pytest.mark.parametrize(("h", "w"), [(72, 88), (96, 96)])
def test_detect_field_finds_the_circle_despite_the_burned_in_label(h: int, w: int) -> None:
    frames = angiogram(clinical_times(7, 1), h=h, w=w, seed=1)
    assert (frames == LABEL_VALUE / 255).any()
    circle = detect_field(frames)
    cy, cx, r = field_geometry(h, w)
    assert abs(circle.cy - cy) < 0.7 and abs(circle.cx - cx) < 0.7 and abs(circle.r - r) < 0.8


def test_detect_field_recovers_a_field_clipped_by_the_frame() -> None:
    yy, xx = np.mgrid[:60, :100]
    field = ((yy - 30) ** 2 + (xx - 50) ** 2 <= 38**2).astype(np.float32) * 0.5  # taller than the frame
    circle = detect_field(np.stack([field, field]))
    assert abs(circle.r - 38) < 1.0 and abs(circle.cx - 50) < 0.7


def test_detect_field_refuses_a_black_video() -> None:
    with pytest.raises(ValueError, match="black"):
        detect_field(np.zeros((3, 40, 40), np.float32))


def test_crop_zeroes_everything_outside_the_circle() -> None:
    frames = angiogram(clinical_times(5, 2), seed=2)
    out = crop_to_field(frames, detect_field(frames), 64)
    assert out.shape == (5, 64, 64)
    assert np.all(out[:, ~disc_mask(64)] == 0)
    assert out.max() < LABEL_VALUE / 255 - 0.02  # the label (brighter than any fundus pixel) is gone
    assert out[:, disc_mask(64, margin=4)].min() > 0.05  # the field itself is kept


def test_crop_pads_a_field_that_leaves_the_frame() -> None:
    frames = np.full((2, 40, 40), 0.5, np.float32)
    out = crop_to_field(frames, Circle(cy=20, cx=5, r=15), 32)
    assert out.shape == (2, 32, 32) and np.all(out[:, :, :8] == 0)  # left of the frame: padding


def test_resample_over_time_and_over_index() -> None:
    times = np.array([0.0, 1.0, 2.0, 10.0])
    frames = times[:, None, None] * np.ones((4, 2, 2), np.float32)  # each frame's value is its time
    by_time, t, method = resample_time(frames, times, 5, "time")
    assert method == "time" and np.allclose(t, [0, 2.5, 5, 7.5, 10])
    assert np.allclose(by_time[:, 0, 0], t, atol=1e-5)  # linear in time reproduces a linear curve
    by_index, t_index, method = resample_time(frames, times, 5, "index")
    assert method == "index" and np.allclose(by_index[:, 0, 0], [0, 0.75, 1.5, 4.0, 10], atol=1e-5)
    assert np.allclose(t_index, by_index[:, 0, 0])
    untimed, none, method = resample_time(frames, None, 5, "time")
    assert method == "index" and none is None and np.allclose(untimed, by_index)


@pytest.mark.parametrize(
    ("times", "message"), [(None, "at least two"), (np.array([0.0, 0.0]), "strictly increasing")]
)
def test_resample_refuses_bad_series(times: np.ndarray | None, message: str) -> None:
    frames = np.zeros((1 if times is None else 2, 4, 4), np.float32)
    with pytest.raises(ValueError, match=message):
        resample_time(frames, times, 5)


def test_vessel_ratio_separates_angiograms_from_flat_noise() -> None:
    rng = np.random.default_rng(0)
    frames = angiogram(clinical_times(9, 4), seed=4)
    video = crop_to_field(frames, detect_field(frames), 64)
    flat = np.where(disc_mask(64)[None], rng.uniform(0.3, 0.32, (9, 64, 64)), 0).astype(np.float32)
    good, bad = vessel_area_ratio(video), vessel_area_ratio(flat)
    assert good > 0.08 and bad < 0.01
    assert abs(vessel_area_ratio(crop_to_field(frames, detect_field(frames), 128)) - good) < 0.05
    assert to_uint8(np.array([0.0, 0.5, 1.2])).tolist() == [0, 128, 255]
