"""Vessel-fidelity measures and the simulator's noise-free twin they are judged against."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.data.build import SimulateConfig, clean_twin, simulate_dataset
from ffasora.data.format import load_video, read_manifest
from ffasora.evaluate.vessels import paired_fidelity, vessel_visibility, within_range
from ffasora.models.vae import WFVAE, WFVAEConfig
from ffasora.simulate import simulate_case


def blur(video: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(video.astype(np.float64), (0, sigma, sigma))


@pytest.fixture(scope="module")
def eyes():
    """Two diabetic eyes (vessels and microaneurysms) at 128 px, each with its noise-free twin."""
    out = []
    for seed in (11, 12):
        noisy = simulate_case(seed, size=128, frames=21, eye="OD", diagnosis="DR:severe_NPDR")
        clean = simulate_case(
            seed, size=128, frames=21, eye="OD", diagnosis="DR:severe_NPDR", camera_noise=False
        )
        out.append((noisy, clean))
    return out


def test_clean_twin_differs_only_by_noise(eyes):
    noisy, clean = eyes[0]
    assert noisy.phases == clean.phases and noisy.motion == clean.motion
    assert all(np.array_equal(noisy.masks[k], clean.masks[k]) for k in noisy.masks)
    diff = noisy.frames.astype(float) - clean.frames.astype(float)
    fov = clean.masks["fov"]
    assert 1.0 < diff[:, fov].std() < 8.0  # sensor noise, a few grey levels
    assert abs(diff[:, fov].mean()) < 0.5  # and nothing systematic (no shift, no gain change)
    assert clean.masks["vessels"].sum() > 0.02 * fov.sum()


def test_paired_fidelity_ranks_copy_blur_and_other_eye(eyes):
    (noisy, clean), (_, other) = eyes
    ref = clean.frames

    def score(video):
        return paired_fidelity(video, ref, clean.masks, clean.phases)

    same, noisy_s = score(ref.astype(float)), score(noisy.frames)
    soft, softer, wrong = score(blur(ref, 1.0)), score(blur(ref, 2.0)), score(other.frames)
    assert same["vessel_retention"] == pytest.approx(1.0) and same["dot_retention"] == pytest.approx(1.0)
    assert noisy_s["vessel_retention"] == pytest.approx(1.0, abs=0.05)  # noise does not hide vessels
    for key in ("vessel_retention", "dot_retention"):
        assert same[key] > soft[key] > softer[key] > wrong[key]
    assert soft["vessel_retention"] < 0.65 and abs(wrong["vessel_retention"]) < 0.35
    assert noisy_s["psnr"] > soft["psnr"] - 3 and soft["psnr"] > softer["psnr"] > wrong["psnr"]
    with pytest.raises(ValueError, match="equal"):
        paired_fidelity(ref[:5], ref, clean.masks, clean.phases)


def test_vessel_visibility_falls_with_blur_not_with_noise(eyes):
    noisy, clean = eyes[0]
    v_clean, v_noisy = vessel_visibility(clean.frames), vessel_visibility(noisy.frames)
    assert v_noisy == pytest.approx(v_clean, rel=0.1)
    assert v_clean > vessel_visibility(blur(clean.frames, 1.0)) > vessel_visibility(blur(clean.frames, 2.0))
    flat = np.repeat(blur(clean.frames, 6.0)[10:11], 21, axis=0)  # a grey disc: no vessel tree at all
    assert vessel_visibility(flat) < 0.3 * v_clean
    assert within_range([1.0, 5.0], [0.0, 1.0, 2.0, 3.0, 4.0]) == 0.5


def test_clean_twin_of_a_dataset_record(tmp_path):
    root = tmp_path / "sim"
    simulate_dataset(root, SimulateConfig(n=6, size=64, frames=9, seed=4, two_eye_fraction=1.0))
    records = read_manifest(root)
    second_eyes = [r for r in records if r.id != min(s.id for s in records if s.patient_id == r.patient_id)]
    assert second_eyes  # the fellow eye's diagnosis must be replayed too
    for record in records:
        twin = clean_twin(root, record.id)
        stored = load_video(root, record.id).astype(float)
        assert twin.frames.shape == stored.shape
        fov = twin.masks["fov"]
        assert np.abs(stored - twin.frames)[:, fov].mean() < 6.0  # same eye and frames, minus noise
    with pytest.raises(ValueError, match="no video"):
        clean_twin(root, "sim-999999")


def test_vae_reconstruct_reports_fidelity_against_the_clean_twin(tmp_path):
    root = tmp_path / "sim"
    simulate_dataset(root, SimulateConfig(n=3, size=128, frames=21, seed=2))
    cfg = WFVAEConfig(latent_dim=4, base_channels=8, encoder_energy_flow_hidden_size=8, in_channels=1,
                      decoder_energy_flow_hidden_size=8, encoder_num_resblocks=1, decoder_num_resblocks=1)  # fmt: skip
    WFVAE(cfg).save_pretrained(tmp_path / "vae")
    out = tmp_path / "recon.json"
    result = CliRunner().invoke(
        app, ["vae", "reconstruct", str(root), "--model", str(tmp_path / "vae"), "--split", "all",
              "--frames", "21", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["videos"]
    assert len(rows) == 3
    for row in rows:  # an untrained VAE is far from the clean twin and blurs the vessel tree
        assert row["psnr_clean"] < 25 and np.isfinite(row["vessel_retention"]) and 0 < row["ssim_clean"] < 0.9
        assert row["visibility"] < row["visibility_input"]


def test_band_features_move_with_blur_not_with_noise(eyes):
    from ffasora.evaluate.vessels import BAND_EDGES_PX, BAND_TIMES, band_features

    (noisy, clean), (other_noisy, _) = eyes
    sharp = band_features(clean.frames)
    assert sharp.shape == ((len(BAND_EDGES_PX) - 1) * BAND_TIMES,)
    fine = slice(0, None, len(BAND_EDGES_PX) - 1)  # the finest band at every time
    assert np.all(band_features(blur(clean.frames, 1.0))[fine] < sharp[fine] - 0.5)  # blur empties it
    gap_noise = np.abs(band_features(noisy.frames) - sharp).mean()
    gap_blur = np.abs(band_features(blur(clean.frames, 1.0)) - sharp).mean()
    gap_eye = np.abs(band_features(other_noisy.frames) - band_features(noisy.frames)).mean()
    assert gap_blur > 2 * gap_noise and gap_blur > gap_eye
