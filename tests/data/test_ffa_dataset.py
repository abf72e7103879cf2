"""FFADataset: shapes, value range, channels, frame resampling, resizing, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ffa_fake_simulator import fake_simulate_case
from torch.utils.data import DataLoader

from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.data.dataset import FFADataset, temporal_indices
from ffasora.data.format import load_video, read_manifest


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("ffa")
    simulate_dataset(path, SimulateConfig(n=12, size=32, frames=9, seed=5), simulate_fn=fake_simulate_case)
    return path


def test_items_are_grey_videos_in_minus_one_one(root):
    ds = FFADataset(root, split="all")
    assert len(ds) == 12
    item = ds[0]
    assert item["video"].shape == (1, 9, 32, 32) and item["video"].dtype == torch.float32
    frames = load_video(root, item["id"])
    assert torch.equal(item["video"][0], torch.from_numpy(frames).float() / 127.5 - 1)
    assert item["report"] == read_manifest(root)[0].report and item["codes"] == read_manifest(root)[0].codes


def test_splits_partition_the_dataset(root):
    ids = [set(r["id"] for r in FFADataset(root, split=s)) for s in ("train", "val", "test")]
    assert sum(len(i) for i in ids) == 12 and not (ids[0] & ids[1]) and not (ids[0] & ids[2])
    assert len(ids[0]) > len(ids[1])


def test_channels_frames_and_size_on_request(root):
    item = FFADataset(root, split="all", frames=5, size=16, channels=3)[3]
    video = item["video"]
    assert video.shape == (3, 5, 16, 16)
    assert torch.equal(video[0], video[2]) and video.min() >= -1 and video.max() <= 1
    full = torch.from_numpy(load_video(root, item["id"])).float() / 127.5 - 1
    assert abs(video[0].mean().item() - full[temporal_indices(9, 5)].mean().item()) < 0.02


def test_bad_requests_are_refused(root):
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        FFADataset(root, frames=8)
    with pytest.raises(ValueError, match="fewer than 13"):
        FFADataset(root, frames=13)
    with pytest.raises(ValueError, match="channels"):
        FFADataset(root, channels=2)
    with pytest.raises(ValueError, match="split"):
        FFADataset(root, split="training")


def test_dataloader_batches_with_collate(root):
    torch.manual_seed(0)
    loader = DataLoader(
        FFADataset(root, split="all"), batch_size=4, shuffle=True, collate_fn=FFADataset.collate
    )
    batch = next(iter(loader))
    assert batch["video"].shape == (4, 1, 9, 32, 32)
    assert len(batch["codes"]) == 4 and isinstance(batch["report"][0], str)


def test_temporal_indices_keep_ends():
    assert temporal_indices(21, 5).tolist() == [0, 5, 10, 15, 20]
    assert np.array_equal(temporal_indices(9, 9), np.arange(9))
