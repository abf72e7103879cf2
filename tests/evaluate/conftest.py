"""Shared fixtures for the evaluation tests: a tiny simulated dataset and an encoder trained on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from evaluate_cases import simulate

from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.evaluate.encoder import EncoderConfig, TrainConfig
from ffasora.evaluate.features import train_features

SIZE, FRAMES = 32, 9


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evaluate") / "ds"
    simulate_dataset(
        root, SimulateConfig(n=40, size=SIZE, frames=FRAMES, seed=3, photos=False), simulate_fn=simulate
    )
    return root


@pytest.fixture(scope="session")
def encoder_dir(sim_dataset: Path) -> Path:
    torch.manual_seed(0)
    out = sim_dataset.parent / "encoder"
    train_features(sim_dataset, out, EncoderConfig(frames=FRAMES, size=SIZE, width=8), TrainConfig(epochs=2))
    return out
