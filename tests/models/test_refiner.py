"""The photograph-guided refiner (models/refiner.py): identity at initialisation, frame subsets, shapes, the
weights round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ffasora.models.refiner import PhotoRefiner, RefinerConfig

TINY = RefinerConfig(base_channels=8, channel_mult=(1, 2), groups=4)


def clip(seed: int = 0, t: int = 5, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, t, size, size, generator=g) * 2 - 1, torch.rand(
        2, 3, size, size, generator=g
    ) * 2 - 1


def trained(seed: int = 0) -> PhotoRefiner:
    """A refiner whose every weight matters (a fresh one outputs its input)."""
    torch.manual_seed(seed)
    model = PhotoRefiner(TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def test_a_fresh_refiner_returns_the_decoded_frames() -> None:
    video, photo = clip()
    with torch.no_grad():
        torch.testing.assert_close(PhotoRefiner(TINY)(video, photo), video, rtol=0, atol=0)


def test_refining_some_frames_equals_those_frames_of_the_whole_clip() -> None:
    model = trained()
    video, photo = clip(t=7)
    picks = torch.tensor([0, 3, 6])  # the first and last frames repeat their edge neighbour
    with torch.no_grad():
        whole, some = model(video, photo), model(video, photo, picks)
    assert some.shape == (2, 3, 16, 16)
    torch.testing.assert_close(some, whole[:, picks])
    assert not torch.allclose(whole, video)  # the weights do something


def test_the_photograph_and_the_frames_place_in_the_clip_change_the_output() -> None:
    model = trained()
    video, photo = clip()
    with torch.no_grad():
        out = model(video, photo)
        assert not torch.allclose(out, model(video, photo.flip(-1)))
        same_frames = video[:, :1].expand(-1, 5, -1, -1)  # five identical frames: only their place differs
        still = model(same_frames, photo)
    assert not torch.allclose(still[:, 0], still[:, 4])


@pytest.mark.parametrize(
    ("video", "photo", "match"),
    [
        (torch.zeros(2, 5, 16), torch.zeros(2, 3, 16), r"expected \(B, T, H, W\)"),
        (torch.zeros(2, 5, 16, 16), torch.zeros(2, 1, 16, 16), r"photograph \(2, 1, 16, 16\)"),
        (torch.zeros(1, 5, 15, 16), torch.zeros(1, 3, 15, 16), r"multiples of 2"),
    ],
)
def test_bad_inputs_are_refused_with_their_shapes(
    video: torch.Tensor, photo: torch.Tensor, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        PhotoRefiner(TINY)(video, photo)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = trained(3)
    model.save_pretrained(tmp_path / "refiner")
    loaded = PhotoRefiner.from_pretrained(tmp_path / "refiner")
    assert loaded.config == TINY
    video, photo = clip(1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(video, photo), model(video, photo), rtol=0, atol=0)


def test_unknown_settings_in_a_config_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown refiner settings \['depth'\]"):
        RefinerConfig.from_dict({"base_channels": 8, "depth": 3}, "x/config.json")
