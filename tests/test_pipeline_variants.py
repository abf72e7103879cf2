"""Variants of a pipeline folder (extra DiTs sharing its VAE and text encoder) with tiny random models: reading
and merging, ``pipeline add-variant``, ``generate --variant``, and the step cache with an image condition."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.models.dit import DiT, DiTConfig
from ffasora.models.image_condition import image_condition_channels
from ffasora.models.pretrained import weights_sha256
from ffasora.models.refiner import PhotoRefiner, RefinerConfig
from ffasora.models.step_cache import StepCache
from ffasora.pipeline import INDEX_NAME, FFASoraPipeline, PipelineConfig, PipelineFolder
from ffasora.train.assemble import add_variant
from tiny_pipeline import save_tiny_pipeline

runner = CliRunner()


def save_student(pipeline: Path, out: Path, *, seed: int = 1, image: bool = False) -> Path:
    """A DiT folder of the pipeline's shape with other random weights (``image``: image-conditioned)."""
    dit = DiT.from_pretrained(pipeline / "dit")
    if image:
        dit = dit.with_image_condition(image_condition_channels(dit.config.in_channels))
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    dit.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("plain"), steps=3)


@pytest.fixture(scope="module")
def student(plain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_student(plain, tmp_path_factory.mktemp("student") / "dit")


@pytest.fixture()
def folder(plain: Path, student: Path, tmp_path: Path) -> Path:
    """The plain folder with a variant "fast": 2 Euler steps, guidance left to the folder (4.0)."""
    root = tmp_path / "pipe"
    shutil.copytree(plain, root)
    add_variant(root, "fast", student, steps=2, sampler="euler", description="2-step student")
    return root


def test_a_folder_without_variants_reads_as_before(plain: Path) -> None:
    index = json.loads((plain / INDEX_NAME).read_text())
    assert "variants" not in index
    read = PipelineFolder.read(plain)
    expected = {k: v for k, v in index.items() if k not in ("vae", "dit", "_class_name", "ffasora_version")}
    assert read.config == PipelineConfig.from_dict(expected, "index")
    assert (read.dit, read.variant, read.variants) == (plain / "dit", None, {})
    assert PipelineFolder.read(plain, "standard") == read
    with pytest.raises(ValueError, match=r"no variant 'fast'; available: standard$"):
        PipelineFolder.read(plain, "fast")


def test_a_variant_loads_its_dit_with_its_settings_merged_over_the_folders(folder: Path) -> None:
    standard, fast = PipelineFolder.read(folder), PipelineFolder.read(folder, "fast")
    assert standard.dit == folder / "dit" and standard.config.diffusion.steps == 3
    assert fast.variant == "fast" and fast.dit == folder / "dit_fast"
    d = fast.config.diffusion
    assert (d.steps, d.sampler, d.guidance) == (2, "euler", 4.0)  # guidance: the folder's own
    assert d.objective == standard.config.diffusion.objective
    assert fast.config.num_frames == standard.config.num_frames
    assert fast.variants["fast"].description == "2-step student"

    pipe = FFASoraPipeline.from_pretrained(folder, variant="fast")
    assert pipe.variant == "fast" and pipe.config.diffusion.steps == 2
    student = DiT.from_pretrained(folder / "dit_fast")
    assert pipe.model_hashes["dit"] == weights_sha256(student)
    video = pipe("leakage at the macula .", seed=1)
    assert video.metadata["variant"] == "fast" and video.metadata["steps"] == 2
    standard_pipe = pipe.load_variant("standard")  # shares the VAE and the text encoder
    assert standard_pipe.vae is pipe.vae and standard_pipe.text_encoder is pipe.text_encoder
    assert standard_pipe.variant is None and standard_pipe.config.diffusion.steps == 3
    assert standard_pipe("leakage at the macula .", seed=1).metadata["variant"] is None
    assert standard_pipe.model_hashes["dit"] != pipe.model_hashes["dit"]


BAD_ENTRIES = [
    ({"Fast!": {"dit": "dit_fast"}}, r"variant name 'Fast!'"),
    ({"standard": {"dit": "dit_fast"}}, r"'standard' is the folder's own dit/"),
    ({"fast": {"dit": "dit_fast", "steps": 4}}, r"variant 'fast': unknown key\(s\) \['steps'\]"),
    ({"fast": {"dit": "dit_gone"}}, r"variant 'fast': its dit folder dit_gone/ is missing"),
    ({"fast": {"dit": "../dit"}}, r"variant 'fast': 'dit' must name a sub-folder"),
    ({"fast": {"dit": "dit_fast", "diffusion": {"stepz": 4}}}, r"unknown diffusion setting\(s\) \['stepz'\]"),
    ({"fast": {"dit": "dit_fast", "diffusion": {"sampler": "bogus"}}}, r"variant 'fast': diffusion .*bogus"),
    (
        {"fast": {"dit": "dit_fast", "refiner": "gone"}},
        r"variant 'fast': its refiner folder gone/ is missing",
    ),
    ([1, 2], r"'variants' must be an object"),
]


@pytest.mark.parametrize(("variants", "message"), BAD_ENTRIES, ids=[m for _, m in BAD_ENTRIES])
def test_bad_variant_entries_name_the_file_and_the_variant(
    folder: Path, variants: object, message: str
) -> None:
    index = json.loads((folder / INDEX_NAME).read_text())
    (folder / INDEX_NAME).write_text(json.dumps(index | {"variants": variants}))
    with pytest.raises(ValueError, match=message) as err:
        PipelineFolder.read(folder)
    assert str(folder / INDEX_NAME) in str(err.value)


def test_add_variant_round_trip_and_refusals(plain: Path, student: Path, tmp_path: Path) -> None:
    root = tmp_path / "pipe"
    shutil.copytree(plain, root)
    args = ["pipeline", "add-variant", str(root), "fast", "--dit", str(student), "--steps", "2"]
    result = runner.invoke(app, [*args, "--guidance", "1", "--sampler", "euler", "--description", "student"])
    assert result.exit_code == 0, result.output
    index = json.loads((root / INDEX_NAME).read_text())
    assert index["variants"] == {
        "fast": {
            "dit": "dit_fast",
            "diffusion": {"steps": 2, "guidance": 1.0, "sampler": "euler"},
            "description": "student",
        }
    }
    assert (root / "dit_fast" / "model.safetensors").read_bytes() == (
        student / "model.safetensors"
    ).read_bytes()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no staging left behind
    assert PipelineFolder.read(root, "fast").config.diffusion.guidance == 1.0

    before = (root / INDEX_NAME).read_text()
    again = runner.invoke(app, args)
    assert again.exit_code != 0 and "variant 'fast' exists; pass --overwrite" in again.output
    other = save_student(plain, tmp_path / "other", seed=5)
    replaced = runner.invoke(
        app, ["pipeline", "add-variant", str(root), "fast", "--dit", str(other), "--overwrite"]
    )
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((root / INDEX_NAME).read_text())["variants"]["fast"] == {
        "dit": "dit_fast",
        "diffusion": {},
    }
    assert (root / "dit_fast" / "model.safetensors").read_bytes() == (
        other / "model.safetensors"
    ).read_bytes()
    assert before != (root / INDEX_NAME).read_text()

    wide = tmp_path / "wide"  # 8 latent channels: not this VAE's 4
    DiT(
        DiTConfig(in_channels=8, out_channels=8, num_layers=1, num_heads=2, head_dim=12, text_dim=32)
    ).save_pretrained(wide)
    before = (root / INDEX_NAME).read_text()
    for bad, message in (
        (["wide", "--dit", str(wide)], "do not match the latent channels 4"),
        (["Wide", "--dit", str(student)], "variant name 'Wide'"),
        (["slow", "--dit", str(student), "--steps", "0"], "steps"),
        (["slow", "--dit", str(tmp_path / "nothing")], "no such folder"),
    ):
        result = runner.invoke(app, ["pipeline", "add-variant", str(root), *bad])
        assert result.exit_code != 0 and message in " ".join(result.output.split()), result.output
        assert "Traceback" not in result.output
    assert (root / INDEX_NAME).read_text() == before
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("dit")) == ["dit", "dit_fast"]


def test_generate_variant_end_to_end(folder: Path, tmp_path: Path) -> None:
    args = ["generate", "leakage at the macula .", "--model", str(folder), "--seed", "2"]
    result = runner.invoke(app, [*args, "--variant", "fast", "--out", str(tmp_path / "fast.gif")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "fast.json").read_text())
    assert meta["variant"] == "fast" and meta["steps"] == 2 and meta["sampler"] == "euler"
    assert meta["model_hashes"]["dit"] == weights_sha256(DiT.from_pretrained(folder / "dit_fast"))
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "standard.gif")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "standard.json").read_text())
    assert meta["variant"] is None and meta["steps"] == 3
    assert meta["model_hashes"]["dit"] == weights_sha256(DiT.from_pretrained(folder / "dit"))


def test_the_step_cache_carries_the_image_condition(plain: Path, tmp_path: Path) -> None:
    root = tmp_path / "pipe"
    shutil.copytree(plain, root)
    add_variant(root, "photo", save_student(plain, tmp_path / "photo_dit", image=True))
    pipe = FFASoraPipeline.from_pretrained(root, variant="photo")
    assert pipe.dit.config.image_channels
    photo = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    report = "leakage at the macula ."
    plain_video = pipe(report, seed=3, image=photo)
    cached = pipe(
        report, seed=3, image=photo, cache_threshold=1e-12
    )  # every step computed, through the cache
    np.testing.assert_array_equal(cached.frames, plain_video.frames)
    assert cached.metadata["network_evaluations"] == plain_video.metadata["network_evaluations"]

    photo_file = tmp_path / "cfp.png"
    Image.fromarray(photo).save(photo_file)
    args = ["generate", report, "--model", str(root), "--variant", "photo", "--image", str(photo_file)]
    result = runner.invoke(app, [*args, "--cache", "0.5", "--out", str(tmp_path / "cached.gif")])
    assert result.exit_code == 0, result.output  # --cache with --image: no longer refused
    meta = json.loads((tmp_path / "cached.json").read_text())
    assert meta["cache_threshold"] == 0.5 and meta["variant"] == "photo" and "image_sha256" in meta
    refused = runner.invoke(app, [*args[:4], "--image", str(photo_file), "--out", str(tmp_path / "no.gif")])
    said = " ".join(refused.output.split())
    assert refused.exit_code != 0 and "this model takes no image condition" in said
    assert "this folder's --variant photo takes one" in said  # the folder's own image variant is named

    x = torch.randn(2, 4, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    text, mask = torch.randn(2, 3, 32), torch.ones(2, 3, dtype=torch.bool)
    image = torch.randn(2, pipe.dit.config.image_channels, 1, 4, 4)
    given = torch.tensor([True, False])
    with torch.no_grad():
        expected = pipe.dit(x, torch.tensor([500, 500]), text, mask, image=image, image_given=given)
    got = StepCache(pipe.dit, 0.0)(x, torch.tensor([500, 500]), text, mask, image=image, image_given=given)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def save_refiner(out: Path, seed: int = 0) -> Path:
    """A tiny photograph-guided refiner whose every weight matters (a fresh one returns its input)."""
    torch.manual_seed(seed)
    refiner = PhotoRefiner(RefinerConfig(base_channels=8, channel_mult=(1, 2), groups=4))
    with torch.no_grad():
        for p in refiner.parameters():
            p.add_(0.05 * torch.randn_like(p))
    refiner.save_pretrained(out)
    return out


def test_a_photo_variant_runs_its_refiner_on_the_decoded_video(plain: Path, tmp_path: Path) -> None:
    root = tmp_path / "pipe"
    shutil.copytree(plain, root)
    refiner = save_refiner(tmp_path / "refiner")
    with pytest.raises(ValueError, match="takes no photograph, so nothing would run it"):
        add_variant(root, "fast", save_student(plain, tmp_path / "text_dit"), refiner=refiner)
    add_variant(root, "photo", save_student(plain, tmp_path / "photo_dit", image=True), refiner=refiner)
    assert json.loads((root / INDEX_NAME).read_text())["variants"]["photo"]["refiner"] == "refiner_photo"
    pipe = FFASoraPipeline.from_pretrained(root, variant="photo")
    assert pipe.refiner is not None
    photo = np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    report = "leakage at the macula ."
    refined = pipe(report, seed=3, image=photo)
    raw = pipe(report, seed=3, image=photo, refine=False)
    np.testing.assert_array_equal(refined.frames, pipe.refine(raw.frames, photo))
    assert not np.array_equal(refined.frames, raw.frames)
    assert refined.metadata["refined"] is True and raw.metadata["refined"] is False
    assert refined.metadata["model_hashes"]["refiner"] == weights_sha256(
        PhotoRefiner.from_pretrained(refiner)
    )
    assert pipe(report, seed=3).metadata["refined"] is False  # no photograph: nothing to refine with
    index = json.loads((root / INDEX_NAME).read_text())
    shutil.copytree(plain / "dit", root / "dit_text")
    index["variants"]["text"] = {"dit": "dit_text", "refiner": "refiner_photo"}  # a text-only DiT
    (root / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(ValueError, match="variant 'text' names a refiner, but its DiT takes no photograph"):
        PipelineFolder.read(root, "text")

    photo_file = tmp_path / "cfp.png"
    Image.fromarray(photo).save(photo_file)
    args = ["generate", report, "--model", str(root), "--variant", "photo", "--image", str(photo_file)]
    for flag, name in (("--refiner", "on"), ("--no-refiner", "off")):
        result = runner.invoke(app, [*args, flag, "--seed", "3", "--out", str(tmp_path / f"{name}.gif")])
        assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "on.json").read_text())["refined"] is True
    assert json.loads((tmp_path / "off.json").read_text())["refined"] is False
