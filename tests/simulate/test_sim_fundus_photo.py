"""The colour fundus photograph of a simulated eye: registered to its angiogram, coloured as light sees it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ffasora.simulate import simulate_case


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(float) @ np.array([0.299, 0.587, 0.114])


def test_photo_is_rgb_deterministic_and_leaves_the_angiogram_alone() -> None:
    a = simulate_case(11, size=64, frames=5, photo=True)
    b = simulate_case(11, size=64, frames=5, photo=True)
    plain = simulate_case(11, size=64, frames=5)
    other = simulate_case(12, size=64, frames=5, photo=True)
    assert a.photo is not None and b.photo is not None
    assert a.photo.shape == (64, 64, 3) and a.photo.dtype == np.uint8
    assert a.photo.tobytes() == b.photo.tobytes()
    assert other.photo is not None and other.photo.tobytes() != a.photo.tobytes()
    # asking for the photograph changes no byte of the angiogram or its ground truth
    assert plain.photo is None
    assert a.frames.tobytes() == plain.frames.tobytes()
    assert all(np.array_equal(a.masks[k], plain.masks[k]) for k in plain.masks)
    assert a.report == plain.report
    assert not a.photo[~a.masks["fov"]].any()
    assert "photo" in a.meta() and "photo" not in plain.meta()


@pytest.mark.parametrize("eye", ["OD", "OS"])
def test_photo_shares_the_anatomy_disc_and_vessels(eye: str) -> None:
    case = simulate_case(3, size=128, frames=5, eye=eye, diagnosis="normal", photo=True)
    assert case.photo is not None
    luma, rgb = _luma(case.photo), case.photo.astype(float)
    m = case.masks
    background = m["vessel_free"] & ~m["disc"]
    # the disc is the palest part of a normal fundus, on the same side as in the angiogram
    assert luma[m["disc"]].mean() > luma[background].mean() + 30
    # vessels are red tubes: in the green channel (where fundus vessels have their contrast) darker than the
    # fundus just beside them; veins darker than arteries
    beside = ndimage.binary_dilation(m["vessels"], iterations=3) & background
    assert rgb[..., 1][m["vessels"]].mean() < rgb[..., 1][beside].mean() - 8
    assert rgb[..., 1][m["vessels_vein"]].mean() < rgb[..., 1][m["vessels_art"]].mean()
    # an orange-red fundus: red over green over blue
    mean = rgb[background].mean(axis=0)
    assert mean[0] > mean[1] > mean[2]


def _contrast(case, code: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Mean RGB inside a lesion's footprint minus the mean of a ring just outside it."""
    inside = case.masks[f"lesion_{code}"] & ~case.masks["vessels"]
    ring = ndimage.binary_dilation(inside, iterations=3) & ~ndimage.binary_dilation(inside, iterations=1)
    ring &= case.masks["vessel_free"]
    rgb = case.photo.astype(float)
    return rgb[inside].mean(axis=0) - rgb[ring].mean(axis=0)


def test_lesions_take_their_colour_signs() -> None:
    """Blocked fluorescence is not one colour: blood is dark red, exudate and drusen are yellow-white."""
    heme = simulate_case(4, size=128, frames=5, diagnosis="normal", signs=("HEME_BLOCK",), photo=True)
    d = _contrast(heme, "HEME_BLOCK")
    assert d[1] < -15 and d[0] > d[1]  # darker, and it loses green more than red: red blood
    exudate = simulate_case(4, size=128, frames=5, diagnosis="normal", signs=("EXUDATE_BLOCK",), photo=True)
    d = _contrast(exudate, "EXUDATE_BLOCK")
    assert d[0] > 10 and d[1] > 10  # bright yellow deposits
    drusen = simulate_case(4, size=128, frames=5, diagnosis="normal", signs=("DRUSEN",), photo=True)
    assert _contrast(drusen, "DRUSEN")[1] > 10
    scar = simulate_case(4, size=128, frames=5, diagnosis="normal", signs=("PIGMENT_BLOCK",), photo=True)
    assert _luma(_contrast(scar, "PIGMENT_BLOCK")[None])[0] < -15  # pigment clumps are dark
