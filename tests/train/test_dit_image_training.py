"""Image-conditioned DiT training: photographs in the latent cache, independent report and image dropout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from latent_fixtures import REPORTS, tiny_bert, tiny_dit_config, tiny_vae

from ffasora.data.build import SimulateConfig, simulate_dataset
from ffasora.diffusion import DiffusionConfig
from ffasora.models.dit import DiT
from ffasora.models.image_condition import encode_photo
from ffasora.models.text import HFTextEncoder
from ffasora.train.dit_task import DiTDataConfig, DiTTask, DiTTaskConfig, collate_latents
from ffasora.train.latents import encode_dataset, load_cached, read_cache_manifest


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four simulated eyes (5 x 32 x 32) with their colour photographs, encoded by a tiny VAE and BERT."""
    root = tmp_path_factory.mktemp("dit_image")
    cfg = SimulateConfig(n=4, size=32, frames=5, seed=1, split_fractions=(1.0, 0.0, 0.0))
    simulate_dataset(root / "data", cfg)
    bert = tiny_bert(root / "bert")
    encoder = HFTextEncoder(bert, max_tokens=64)  # its toy vocabulary reads the fixture reports only
    encode_dataset(
        root / "data", root / "cache", tiny_vae(), encoder, preprocess=lambda r: REPORTS[len(r) % 4]
    )
    return root / "cache"


def _config(cache: Path, image_channels: int = 12, **data: object) -> DiTTaskConfig:
    model = dataclasses.replace(tiny_dit_config(), image_channels=image_channels)
    return DiTTaskConfig(
        model=model,
        data=DiTDataConfig(cache=str(cache), **data),  # type: ignore[arg-type]
        diffusion=DiffusionConfig(objective="flow", sampler="euler", steps=20, guidance=1.0),
    )


def test_cache_holds_each_eyes_photograph_latent(cache: Path) -> None:
    from ffasora.data.format import load_image, read_info
    from ffasora.train.latents import read_cache_info

    info = read_cache_info(cache)
    assert info["image_channels"] == 12
    record = read_cache_manifest(cache)[0]
    image = load_cached(cache, record)["image"]
    assert image.shape == (12, 1, 4, 4)
    dataset = read_info(info["dataset"])
    assert dataset["format_version"] == 2
    expected = encode_photo(tiny_vae(), load_image(info["dataset"], record.id), 32, 32)[0]
    assert torch.allclose(image, expected, atol=1e-5)


def test_report_and_image_dropout_are_independent(cache: Path) -> None:
    task = DiTTask()
    cfg = _config(cache, empty_report_dropout=0.5, image_dropout=0.5)
    models = task.build_models(cfg)
    with torch.no_grad():
        for p in models["model"].parameters():
            p.add_(0.05 * torch.randn_like(p))
    dataset = task.build_dataset(cfg, "train")
    batch = collate_latents([dataset[i] for i in range(4)] * 16)  # 64 samples
    assert batch["image"].shape == (64, 12, 1, 4, 4) and batch["has_image"].all()
    seen = []
    model = models["model"]
    original = model.forward

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        seen.append(kwargs["image_given"])
        return original(*args, **kwargs)  # type: ignore[arg-type]

    model.forward = spy  # type: ignore[method-assign]
    torch.manual_seed(0)
    losses = task.training_step(models, batch, 0)
    given = seen[0]
    assert losses["model"].isfinite() and 0.3 < float(losses["dropped_images"]) < 0.7
    assert float(losses["dropped_reports"]) > 0.2 and 10 < int(given.sum()) < 54
    # a text-only model on the same cache ignores the photographs entirely
    plain = _config(cache, image_channels=0)
    assert "dropped_images" not in task.training_step(task.build_models(plain), batch, 0)


def test_mismatched_image_channels_are_refused(cache: Path) -> None:
    with pytest.raises(ValueError, match="image condition has 12 channels"):
        DiTTask().build_dataset(_config(cache, image_channels=8), "train")
    assert DiT(_config(cache).model).image_embed is not None
