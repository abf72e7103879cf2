"""``RandomViews``: cheap VAE training items (consecutive-frame windows, random crops), fixed by their index."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ffasora.config import load_config
from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.data.dataset import FFADataset
from ffasora.train.vae_task import RandomViews, VAEDataConfig, VAETask, VAETaskConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("views") / "sim"
    simulate_dataset(root, SimulateConfig(n=3, size=32, frames=9, seed=0, split_fractions=(1.0, 0.0, 0.0)))
    return FFADataset(root, "all", None, None)


def test_views_are_windows_and_crops_of_the_clip(clips):
    views = RandomViews(clips, frames=5, crop=16, views=4)
    assert len(views) == 4 * len(clips)
    for index in range(len(views)):
        item, whole = views[index], clips[index % len(clips)]["video"]
        assert item["video"].shape == (1, 5, 16, 16)
        found = [  # the view is a consecutive window and a square of the clip, at some offset
            (t, y, x)
            for t in range(5) for y in range(17) for x in range(17)
            if torch.equal(whole[:, t : t + 5, y : y + 16, x : x + 16], item["video"])
        ]  # fmt: skip
        assert found
    assert torch.equal(views[7]["video"], views[7]["video"])  # an index always gives the same view
    assert len({tuple(views[i * len(clips)]["video"].flatten()[:50].tolist()) for i in range(4)}) > 1


def test_views_config_errors(clips):
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        RandomViews(clips, frames=4, crop=0, views=1)
    with pytest.raises(ValueError, match="multiple of 8"):
        RandomViews(clips, frames=None, crop=12, views=1)
    with pytest.raises(ValueError, match="exceeds"):
        RandomViews(clips, frames=None, crop=40, views=1)[0]


def test_task_builds_views_only_when_asked(clips):
    task, root = VAETask(), str(clips.root)
    plain = task.build_dataset(VAETaskConfig(data=VAEDataConfig(root=root, frames=9, size=32)), "all")
    assert isinstance(plain, FFADataset)
    data = VAEDataConfig(root=root, frames=5, size=32, window=True, crop=16, views=2)
    views = task.build_dataset(VAETaskConfig(data=data), "all")
    channels = VAETaskConfig().model.in_channels
    assert isinstance(views, RandomViews) and views[0]["video"].shape == (channels, 5, 16, 16)


@pytest.mark.parametrize("preset", sorted((ROOT / "configs" / "vae").glob("*.toml")), ids=lambda p: p.name)
def test_every_vae_preset_loads(preset):
    cfg = load_config(VAETaskConfig, preset)
    assert cfg.data.frames % 4 == 1 and cfg.train.max_steps > 0


def test_vessels_preset_trains_on_crops_of_whole_clips(clips):
    cfg = load_config(
        VAETaskConfig,
        ROOT / "configs" / "vae" / "vessels.toml",
        [f"data.root={clips.root}", "data.frames=9", "data.size=32", "data.crop=16"],
    )
    views = VAETask().build_dataset(cfg, "all")
    assert isinstance(views, RandomViews) and views[0]["video"].shape == (1, 9, 16, 16)
    assert not cfg.model.use_attention  # fully convolutional: what crops teach holds for whole frames
