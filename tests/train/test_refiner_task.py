"""The refiner's training (ffasora.train.refiner_task): round trips through a VAE, then the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from latent_fixtures import quick_train_config, tiny_vae
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.data.format import load_video
from ffasora.evaluate.photo import vae_round_trip
from ffasora.models.pretrained import weights_sha256
from ffasora.models.refiner import PhotoRefiner, RefinerConfig
from ffasora.train.refiner_task import (
    RefinerDataConfig,
    RefinerTask,
    RefinerTaskConfig,
    RoundTripDataset,
    write_round_trips,
)
from tiny_pipeline import save_tiny_pipeline

ROOT = Path(__file__).resolve().parents[2]
TINY = RefinerConfig(base_channels=8, channel_mult=(1, 2), groups=4)


@pytest.fixture(scope="module")
def paired(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("refiner") / "ds"
    simulate_dataset(root, SimulateConfig(n=3, size=32, frames=5, seed=4, split_fractions=(1.0, 0.0, 0.0)))
    return root


@pytest.fixture(scope="module")
def round_trips(paired: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_round_trips(paired, tiny_vae(), tmp_path_factory.mktemp("rt") / "round_trips")


def test_round_trips_hold_the_decoded_true_video_and_photograph_and_resume(
    paired: Path, round_trips: Path
) -> None:
    vae = tiny_vae()
    info = json.loads((round_trips / "round_trips.json").read_text())
    assert len(info["ids"]) == 3 and info["vae_sha256"] == weights_sha256(vae)
    first = info["ids"][0]
    with np.load(round_trips / f"{first}.npz") as z:
        frames = load_video(paired, first)
        np.testing.assert_array_equal(z["frames"], frames)
        np.testing.assert_array_equal(z["decoded"], vae_round_trip(vae, frames))
        assert z["photo"].shape == (32, 32, 3) and z["photo"].dtype == np.uint8
    stamp = (round_trips / f"{first}.npz").stat().st_mtime_ns
    write_round_trips(paired, vae, round_trips)  # a rerun keeps what is there
    assert (round_trips / f"{first}.npz").stat().st_mtime_ns == stamp
    item = RoundTripDataset(round_trips)[0]
    assert item["decoded"].shape == (5, 32, 32) and item["photo"].shape == (3, 32, 32)
    assert float(item["frames"].min()) >= -1.0 and float(item["frames"].max()) <= 1.0


def test_the_refiner_learns_to_undo_the_round_trip(round_trips: Path, tmp_path: Path) -> None:
    from ffasora.train.engine import Trainer
    from ffasora.train.export import export_run

    train = quick_train_config(120, 3, 3e-3)
    data = RefinerDataConfig(round_trips=str(round_trips), crop=16, frames_per_clip=2, input_noise=0.0)
    cfg = RefinerTaskConfig(model=TINY, data=data, train=train)
    Trainer(RefinerTask(), cfg, tmp_path / "run", task_name="refiner").fit()
    refiner = PhotoRefiner.from_pretrained(
        export_run(tmp_path / "run", tmp_path / "refiner", dtype="fp32", use_ema=False)
    )
    clips = [RoundTripDataset(round_trips)[i] for i in range(3)]
    decoded = torch.stack([c["decoded"] for c in clips])
    truth = torch.stack([c["frames"] for c in clips])
    with torch.no_grad():
        refined = refiner(decoded, torch.stack([c["photo"] for c in clips]))
    before, after = float((decoded - truth).abs().mean()), float((refined - truth).abs().mean())
    assert after < 0.8 * before, (before, after)
    source = json.loads((tmp_path / "refiner" / "training_source.json").read_text())
    assert source["train_videos"] == 3 and source["vae_sha256"] == weights_sha256(tiny_vae())


def test_round_trips_can_keep_the_generators_own_video_of_each_eye(paired: Path, tmp_path: Path) -> None:
    from ffasora.data.format import read_manifest
    from ffasora.models.vae import WFVAE
    from ffasora.pipeline import FFASoraPipeline

    pipe = FFASoraPipeline.from_pretrained(  # the tiny encoder knows a few words: read every report as them
        save_tiny_pipeline(tmp_path / "pipe", image=True), preprocess=lambda report: "leakage at the macula ."
    )
    with pytest.raises(ValueError, match="decodes with another VAE"):
        write_round_trips(paired, tiny_vae(), tmp_path / "x", generator=pipe)
    out = write_round_trips(
        paired, WFVAE.from_pretrained(tmp_path / "pipe" / "vae"), tmp_path / "rt", generator=pipe
    )
    row, record = next((i, r) for i, r in enumerate(read_manifest(paired)) if r.split == "train")
    with np.load(out / f"{record.id}.npz") as z:
        expected = pipe(record.report, 5, 32, 32, seed=row, image=z["photo"], refine=False).frames
        np.testing.assert_array_equal(z["generated"], expected)
    assert json.loads((out / "round_trips.json").read_text())["generator"] == pipe.model_hashes
    item = RoundTripDataset(out)[0]
    assert bool(item["has_generated"]) and not torch.equal(item["generated"], item["decoded"])
    # a run with generated_share = 0 does not read the stored video
    unread = RoundTripDataset(out, with_generated=False)[0]
    assert not bool(unread["has_generated"]) and torch.equal(unread["generated"], unread["decoded"])


def test_a_crop_the_refiner_cannot_take_is_refused(round_trips: Path) -> None:
    data = RefinerDataConfig(round_trips=str(round_trips), crop=18)
    with pytest.raises(
        ValueError, match="data.crop = 18: must be at most the videos' 32 px and a multiple of 4"
    ):
        RefinerTask().build_dataset(RefinerTaskConfig(data=data), "train")


def test_round_trips_command_refuses_a_dataset_without_photographs(tmp_path: Path) -> None:
    simulate_dataset(tmp_path / "ds", SimulateConfig(n=2, size=32, frames=5, seed=1, photos=False))
    vae = tiny_vae()
    vae.save_pretrained(tmp_path / "vae")
    args = ["refiner", "round-trips", str(tmp_path / "ds"), "--vae", str(tmp_path / "vae")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "rt")])
    assert result.exit_code != 0 and "with a paired photograph" in " ".join(result.output.split())
    result = CliRunner().invoke(app, [*args[:2], str(tmp_path), *args[3:], "--out", str(tmp_path / "rt")])
    assert result.exit_code != 0 and "not an FFA dataset folder" in result.output


def test_the_bundled_preset_loads_and_the_registry_finds_the_task() -> None:
    from ffasora.config import load_config
    from ffasora.train.tasks import load_task

    preset = ROOT / "configs" / "refiner" / "bundled.toml"
    cfg = load_config(RefinerTaskConfig, preset, ["data.round_trips=/rt"])
    assert cfg.model == RefinerConfig() and cfg.data.round_trips == "/rt"
    assert isinstance(load_task("refiner"), RefinerTask)
