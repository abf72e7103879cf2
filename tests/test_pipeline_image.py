"""Image-conditioned generation end to end with tiny random models: ``generate --image`` and the pipeline."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.models.image_condition import encode_photo
from ffasora.pipeline import FFASoraPipeline
from ffasora.simulate import simulate_case
from tiny_pipeline import save_tiny_pipeline


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("image_pipeline"), steps=2, image=True)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two simulated colour fundus photographs (64 px: the pipeline resizes them to its 32 px)."""
    root = tmp_path_factory.mktemp("photos")
    paths = []
    for seed in (1, 2):
        case = simulate_case(seed, size=64, frames=5, photo=True)
        assert case.photo is not None
        Image.fromarray(case.photo).save(root / f"cfp{seed}.png")
        paths.append(root / f"cfp{seed}.png")
    return paths


def test_photo_encodes_each_colour_into_its_own_latent_channels(folder: Path) -> None:
    pipe = FFASoraPipeline.from_pretrained(folder)
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 200
    green = red[..., [1, 0, 2]]
    a, b = encode_photo(pipe.vae, red, 32, 32), encode_photo(pipe.vae, green, 32, 32)
    assert a.shape == (1, 12, 1, 4, 4)
    assert torch.allclose(a[:, :4], b[:, 4:8]) and torch.allclose(a[:, 4:8], b[:, :4])  # colour-major
    assert not torch.allclose(a, b)


def test_pipeline_follows_the_photograph(folder: Path, photos: list[Path]) -> None:
    pipe = FFASoraPipeline.from_pretrained(folder)
    one, two = (np.asarray(Image.open(p).convert("RGB")) for p in photos)
    report = "leakage at the macula ."
    with_one = pipe(report, seed=3, image=one)
    assert with_one.frames.shape == (5, 32, 32)
    np.testing.assert_array_equal(with_one.frames, pipe(report, seed=3, image=one).frames)
    assert not np.array_equal(with_one.frames, pipe(report, seed=3, image=two).frames)
    assert not np.array_equal(with_one.frames, pipe(report, seed=3).frames)  # report-only differs
    image_only = pipe("", seed=3, image=one)  # no report: image-only generation
    assert not np.array_equal(image_only.frames, with_one.frames)
    meta = with_one.metadata
    assert meta["image_pixels_sha256"] == hashlib.sha256(one.tobytes()).hexdigest()
    assert "image_pixels_sha256" not in pipe(report, seed=3).metadata
    with pytest.raises(ValueError, match="uint8 RGB"):
        pipe(report, image=one[..., 0])


def test_cli_generate_with_image_single_and_batch(folder: Path, photos: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["generate", "--model", str(folder), "--steps", "2", "--seed", "4"]
    out = tmp_path / "one.mp4"
    result = runner.invoke(
        app, [*args, "--image", str(photos[0]), "leakage at the macula .", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["image_sha256"] == hashlib.sha256(photos[0].read_bytes()).hexdigest()
    assert str(photos[0].parent) not in out.with_suffix(".json").read_text()  # never the path
    result = runner.invoke(app, [*args, "--image", str(photos[1]), "--out", str(tmp_path / "only.mp4")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "only.json").read_text())["report"] == ""
    batch = photos[0].parent / "batch.jsonl"
    lines = [{"image": photos[0].name, "id": "a"}, {"report": "normal disc .", "image": photos[1].name}]
    batch.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = runner.invoke(app, [*args, "--batch", str(batch), "--out", str(tmp_path / "many")])
    assert result.exit_code == 0, result.output
    digests = [
        json.loads((tmp_path / "many" / f"{n}.json").read_text())["image_sha256"] for n in ("a", "00001")
    ]
    assert digests == [hashlib.sha256(p.read_bytes()).hexdigest() for p in photos]
    batch.write_text(json.dumps({"image": "missing.png"}) + "\n")
    result = runner.invoke(app, [*args, "--batch", str(batch), "--out", str(tmp_path / "bad")])
    assert result.exit_code != 0 and "line 1" in result.output and "no such file" in result.output


def test_cli_refuses_an_image_for_a_text_only_model(tmp_path: Path, photos: list[Path]) -> None:
    text_only = save_tiny_pipeline(tmp_path / "plain", steps=2)
    args = ["generate", "--model", str(text_only), "--image", str(photos[0]), "normal disc ."]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x.mp4")])
    assert result.exit_code != 0 and "no image condition" in result.output
    assert not (tmp_path / "x.mp4").exists()
