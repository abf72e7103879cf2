"""Paired evaluation of photograph-conditioned generation, with its model-free baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.data.format import VideoRecord, load_video
from ffasora.evaluate.photo import evaluate_photo_generation, photo_baselines, summarise


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
    assert calls[-1] == 4 and set(table) == {"cfp_grey", "cfp_green_inverted", "truth", "dark"}
    assert table["truth"]["n"] == 4 and table["truth"]["ssim"][0] == pytest.approx(1.0)
    assert table["truth"]["vessel_retention"][0] == pytest.approx(1.0)
    # vessels are dark in a colour photograph and bright in the angiogram: only the inverted green channel
    # keeps their sign, so it keeps positive vessel contrast and the plain grey copy a negative one
    assert table["cfp_green_inverted"]["vessel_retention"][0] > 0 > table["cfp_grey"]["vessel_retention"][0]
    assert table["dark"]["ssim"][0] < table["truth"]["ssim"][0]
    with pytest.raises(ValueError, match="no 'train' videos"):
        evaluate_photo_generation(paired, {}, split="train")
