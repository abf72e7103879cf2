"""The WF-VAE's shape rules: one owner, asked by the pipeline, training and the data tools alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ffasora.data.build import SimulateConfig
from ffasora.data.format import check_frames as check_video_frames
from ffasora.models.vae import WFVAE, WFVAEConfig
from ffasora.models.vae_shapes import (
    check_frames,
    frame_count_problem,
    is_legal_frames,
    latent_frames,
    latent_shape,
    legal_frames_above,
    legal_frames_below,
    pixel_frames,
)
from ffasora.pipeline import PipelineConfig, resolve_settings


def test_legal_frame_counts_are_1_plus_4k_and_round_trip_through_the_latent() -> None:
    legal = [n for n in range(0, 30) if is_legal_frames(n)]
    assert legal == [1, 5, 9, 13, 17, 21, 25, 29]
    for n in legal:
        assert pixel_frames(latent_frames(n)) == n
    assert (legal_frames_below(20), legal_frames_above(20)) == (17, 21)
    assert (legal_frames_below(21), legal_frames_above(21)) == (21, 21)
    assert legal_frames_above(0) == 1


@pytest.mark.parametrize(("frames", "nearest"), [(20, "use 17 or 21"), (2, "use 1 or 5"), (0, "use 1")])
def test_an_illegal_count_is_named_with_the_nearest_legal_ones(frames: int, nearest: str) -> None:
    problem = frame_count_problem(frames)
    assert problem is not None and "1 + 4k" in problem and problem.endswith(nearest)
    with pytest.raises(ValueError, match=rf"clip has {frames} frames: .*{nearest}"):
        check_frames(frames, "clip")
    assert frame_count_problem(21) is None


def test_latent_shape_of_a_clip() -> None:
    assert latent_shape(21, 512, 256) == (6, 64, 32)
    with pytest.raises(ValueError, match="width=260"):
        latent_shape(21, 512, 260)
    vae = WFVAE(WFVAEConfig(latent_dim=4, base_channels=8, encoder_energy_flow_hidden_size=8,
                            decoder_energy_flow_hidden_size=8, encoder_num_resblocks=1,
                            decoder_num_resblocks=1))  # fmt: skip
    assert vae.latent_shape(9, 32, 16) == (4, 3, 4, 2)
    with torch.inference_mode():
        z = vae.encode(torch.zeros(1, 3, 9, 32, 16)).mean
    assert tuple(z.shape[1:]) == vae.latent_shape(9, 32, 16)  # the rule is what the model does


def test_every_part_gives_the_vaes_message_for_an_illegal_count() -> None:
    """The data tools, simulation settings and the pipeline ask the VAE's rule rather than re-deriving it."""
    problem = frame_count_problem(20)
    assert problem is not None
    failures = {
        "video": lambda: check_video_frames(np.zeros((20, 8, 8), np.uint8), "video"),
        "simulate": lambda: SimulateConfig(frames=20),
        "pipeline": lambda: resolve_settings(PipelineConfig(), 2, num_frames=20),
    }
    for name, fail in failures.items():
        with pytest.raises(ValueError) as err:
            fail()
        assert problem in str(err.value), name
