"""Paired evaluation of photograph-conditioned generation, with its model-free baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.data.format import VideoRecord, load_video, read_manifest
from ffasora.evaluate.photo import (
    bootstrap_interval,
    evaluate_photo_generation,
    findings_f1,
    photo_baselines,
    summarise,
    vae_round_trip,
)


@pytest.fixture(scope="module")
def paired(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photo_eval") / "ds"
    cfg = SimulateConfig(n=4, size=96, frames=9, seed=5, split_fractions=(0.0, 0.0, 1.0))
    simulate_dataset(root, cfg)
    return root


def test_baselines_copy_the_photograph_into_every_frame() -> None:
    photo = np.zeros((8, 8, 3), np.uint8)
    photo[2:6, 2:6] = (200, 100, 50)
    videos = photo_baselines(photo, 5)
    assert (
        videos["cfp_grey"].shape == (5, 8, 8) and (videos["cfp_grey"][:, 3, 3] == 124).all()
    )  # 0.299 R + 0.587 G + 0.114 B
    assert (videos["cfp_green_inverted"][:, 3, 3] == 155).all()
    assert videos["cfp_green_inverted"][0, 0, 0] == 0  # outside the aperture stays black
    with pytest.raises(ValueError, match="uint8"):
        photo_baselines(photo[..., 0], 5)


def test_paired_scores_rank_truth_over_baselines(paired: Path) -> None:
    def truth(record: VideoRecord, photo: np.ndarray) -> np.ndarray:
        return load_video(paired, record.id)

    def dark(record: VideoRecord, photo: np.ndarray) -> np.ndarray:
        return np.zeros_like(load_video(paired, record.id))

    calls: list[int] = []
    rows = evaluate_photo_generation(
        paired, {"truth": truth, "dark": dark}, progress=lambda d, t: calls.append(d)
    )
    table = summarise(rows)
    controls = {"reference", "time_reversed", "other_anatomy"}
    assert calls[-1] == 4 and set(table) == controls | {"cfp_grey", "cfp_green_inverted", "truth", "dark"}
    assert table["truth"]["n"] == 4 and table["truth"]["ssim"][0] == pytest.approx(1.0)
    assert table["truth"]["vessel_retention"][0] == pytest.approx(1.0)
    # vessels are dark in a colour photograph and bright in the angiogram: only the inverted green channel
    # keeps their sign, so it keeps positive vessel contrast and the plain grey copy a negative one
    assert table["cfp_green_inverted"]["vessel_retention"][0] > 0 > table["cfp_grey"]["vessel_retention"][0]
    assert table["dark"]["ssim"][0] < table["truth"]["ssim"][0]
    # every condition is scored the same way: the true video is the reference control, row for row
    assert table["truth"]["physiology"] == table["reference"]["physiology"]
    assert (
        table["reference"]["physiology"]["overall"]["n"] + table["reference"]["physiology"]["no_check"] == 4
    )
    assert table["reference"]["ssim_ci95"] == pytest.approx([1.0, 1.0])
    low, high = table["cfp_grey"]["psnr_ci95"]
    assert low <= table["cfp_grey"]["psnr"][0] <= high
    assert table["truth"]["vessel_visibility"][0] > 0 and np.isnan(
        table["dark"]["vessel_visibility"][0]
    )  # no field
    assert table["time_reversed"]["ssim"][0] < 1.0
    with pytest.raises(ValueError, match="no 'train' videos"):
        evaluate_photo_generation(paired, {}, split="train")


def test_vae_round_trip_control_sits_between_the_copy_baseline_and_the_truth(paired: Path) -> None:
    from ffasora.cli.generate_commands import bundled_model
    from ffasora.models.vae import WFVAE

    vae = WFVAE.from_pretrained(bundled_model() / "vae").eval()
    frames = load_video(paired, read_manifest(paired)[0].id)
    once = vae_round_trip(vae, frames)
    assert once.shape == frames.shape and once.dtype == np.uint8 and not np.array_equal(once, frames)
    table = summarise(evaluate_photo_generation(paired, {}, vae=vae))
    assert table["reference_vae"]["n"] == 4
    # a trained VAE keeps the picture (far above the copy baseline) but not all of it
    assert table["cfp_grey"]["ssim"][0] < table["reference_vae"]["ssim"][0] < 1.0
    assert table["reference_vae"]["vessel_retention"][0] > 0.0  # vessels keep their sign
    assert "reference_vae" not in summarise(evaluate_photo_generation(paired, {}))


def test_findings_f1_pools_codes_with_an_interval_over_eyes() -> None:
    truth = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], bool)
    exact = findings_f1(truth, truth, ["A", "B"], rounds=50)
    assert exact["f1"] == 1.0 and exact["f1_ci95"] == [1.0, 1.0] and exact["n"] == 4
    half = findings_f1(np.array([[1, 0], [1, 0], [1, 0], [1, 0]], bool), truth, ["A", "B"], rounds=200)
    assert half["precision"] == 0.5 and half["recall"] == 0.5 and half["f1"] == pytest.approx(0.5)
    low, high = half["f1_ci95"]
    assert low < 0.5 < high
    assert bootstrap_interval(lambda i: 0.0, 1) is None
