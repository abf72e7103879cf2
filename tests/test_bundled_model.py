"""The bundled model (package data ``ffasora/pretrained``, docs/bundled-model.md) and ``ffasora generate``'s
default to it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer

import ffasora
from ffasora.cli.generate_commands import bundled_model
from ffasora.io import bundled

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "pretrained"
SMALL = dict(num_frames=5, height=32, width=32, steps=2)  # a tiny clip keeps the test fast


def test_default_model_is_package_data_and_missing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bundled_model() == Path(ffasora.__file__).resolve().parent / "pretrained"
    assert BUNDLED.resolve() == bundled_model().resolve()  # the checkout's pretrained/ is a link to it
    monkeypatch.setattr(bundled, "PACKAGE_DATA", "not_there")
    with pytest.raises(typer.BadParameter, match="model_index.json missing.*--model"):
        bundled_model()


def test_bundle_is_small_16bit_and_has_a_model_card() -> None:
    from safetensors.torch import load_file

    total = sum(p.stat().st_size for p in BUNDLED.rglob("*") if p.is_file())
    assert total < 50 * 2**20
    assert "not for clinical use" in (BUNDLED / "README.md").read_text().lower()
    dtypes = {str(t.dtype) for t in load_file(BUNDLED / "dit" / "model.safetensors").values()}
    assert dtypes <= {"torch.float16", "torch.bfloat16"}, dtypes


def test_bundled_model_is_reproducible_per_seed() -> None:
    from ffasora.pipeline import FFASoraPipeline

    pipe = FFASoraPipeline.from_pretrained(BUNDLED)
    report = "Right eye: in the venous phase, leak points over the macula. Impression: right eye acute CSC."
    a, b = pipe(report, seed=3, **SMALL), pipe(report, seed=3, **SMALL)
    c = pipe(report, seed=4, **SMALL)
    assert a.frames.shape == (5, 32, 32) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize(
    "report",
    [
        "Normal angiogram.",
        "左眼：静脉期黄斑区可见渗漏点，晚期荧光渗漏逐渐扩大。印象：左眼急性中心性浆液性脉络膜视网膜病变。",
    ],
    ids=["english", "chinese"],
)
def test_cli_generate_without_model_uses_the_bundle(tmp_path: Path, report: str) -> None:
    from typer.testing import CliRunner

    from ffasora.cli import app

    args = ["generate", report, "--steps", "1", "--frames", "5", "--height", "32"]
    args += ["--width", "32", "--out", str(tmp_path / "v.mp4")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "v.json").read_text())
    dit_weights = BUNDLED / "dit" / "model.safetensors"
    assert meta["steps"] == 1 and meta["synthetic"] and dit_weights.is_file()
    assert len(meta["model_hashes"]["dit"]) == 64
    assert (tmp_path / "v.mp4").stat().st_size > 0 and meta["report"] == report
    assert "unknown" not in result.output.lower()  # the Chinese report reached the encoder translated


def test_the_bundled_fast_variant_samples_in_four_unguided_steps(tmp_path: Path) -> None:
    """`generate --variant fast`: the shipped 4-step student (docs/sampling.md), one forward per step."""
    from typer.testing import CliRunner

    from ffasora.cli import app

    index = json.loads((BUNDLED / "model_index.json").read_text())
    assert index["variants"]["fast"]["diffusion"] == {"steps": 4, "guidance": 1.0, "sampler": "euler"}
    args = ["generate", "Late leakage at the disc.", "--variant", "fast", "--frames", "5", "--height", "32"]
    result = CliRunner().invoke(app, [*args, "--width", "32", "--out", str(tmp_path / "v.mp4")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "v.json").read_text())
    assert meta["variant"] == "fast" and meta["steps"] == 4 and meta["guidance"] == 1.0
    assert meta["network_evaluations"] == 4
    from safetensors.torch import load_file

    student = load_file(BUNDLED / "dit_fast" / "model.safetensors")
    assert {str(t.dtype) for t in student.values()} <= {"torch.float16", "torch.bfloat16"}
    assert meta["model_hashes"]["dit"] != _standard_dit_hash(tmp_path)  # the provenance names the student


def _standard_dit_hash(tmp_path: Path) -> str:
    from typer.testing import CliRunner

    from ffasora.cli import app

    args = ["generate", "Late leakage at the disc.", "--steps", "1", "--frames", "5", "--height", "32"]
    result = CliRunner().invoke(app, [*args, "--width", "32", "--out", str(tmp_path / "s.mp4")])
    assert result.exit_code == 0, result.output
    return str(json.loads((tmp_path / "s.json").read_text())["model_hashes"]["dit"])


def test_the_bundled_photo_variant_puts_the_disc_where_the_photograph_has_it(tmp_path: Path) -> None:
    """`generate --variant photo --image CFP`: the shipped image-conditioned DiT (docs/image-conditioning.md).
    From the photograph alone (no report) the video's optic disc, its brightest spot, follows the photograph's
    disc, and moves to the other side when the photograph is mirrored. This is the DiT's placement, so the
    refiner is left out (``--no-refiner``): it may draw a laser scar brighter than the disc in late frames."""
    from PIL import Image
    from typer.testing import CliRunner

    from ffasora.cli import app
    from ffasora.data.build import SimulateConfig, simulate_dataset
    from ffasora.data.format import load_image, read_manifest
    from ffasora.io.video import read_video

    simulate_dataset(tmp_path / "ds", SimulateConfig(n=1, size=128, frames=21, seed=3))
    photo = load_image(tmp_path / "ds", read_manifest(tmp_path / "ds")[0].id)
    columns = []
    for name, picture in (("as_is", photo), ("mirrored", photo[:, ::-1])):
        Image.fromarray(picture).save(tmp_path / f"{name}.png")
        args = ["generate", "--variant", "photo", "--image", str(tmp_path / f"{name}.png"), "--steps", "8"]
        args.append("--no-refiner")
        result = CliRunner().invoke(app, [*args, "--seed", "0", "--out", str(tmp_path / f"{name}.mp4")])
        assert result.exit_code == 0, result.output
        frames, _ = read_video(tmp_path / f"{name}.mp4")
        late = frames[len(frames) // 2 :].astype(np.float64).mean(axis=0)
        disc = np.unravel_index(np.argmax(picture.astype(np.float64).sum(-1)), picture.shape[:2])[1]
        columns.append((int(disc), int(np.unravel_index(np.argmax(late), late.shape)[1])))
        meta = json.loads((tmp_path / f"{name}.json").read_text())
        assert meta["variant"] == "photo" and len(meta["image_sha256"]) == 64 and meta["refined"] is False
    (disc_a, video_a), (disc_b, video_b) = columns
    assert abs(disc_a - disc_b) > 32  # the mirrored photograph has its disc on the other side
    assert abs(video_a - disc_a) < 16 and abs(video_b - disc_b) < 16, columns


def test_the_bundled_photo_variants_refiner_draws_this_photographs_vessels(tmp_path: Path) -> None:
    """The `photo` variant's refiner (docs/image-conditioning.md, "The photograph-guided refiner"): on a video the
    variant generated for an unseen simulated eye, the vessels it draws sit on the eye's own vessel map, and
    they come from the photograph: the same video refined with the mirrored photograph does not have them
    there."""
    from scipy import ndimage

    from ffasora.data.build import SimulateConfig, simulate_dataset
    from ffasora.data.format import load_image, load_truth, read_manifest
    from ffasora.pipeline import FFASoraPipeline

    simulate_dataset(tmp_path / "ds", SimulateConfig(n=1, size=128, frames=21, seed=3))
    record = read_manifest(tmp_path / "ds")[0]
    photo = load_image(tmp_path / "ds", record.id)
    masks, _ = load_truth(tmp_path / "ds", record.id)
    vessels = np.asarray(masks["vessels"], bool)  # arteries and veins
    ring = ndimage.binary_dilation(vessels, iterations=3) & ~vessels

    pipe = FFASoraPipeline.from_pretrained(BUNDLED, variant="photo")
    assert pipe.refiner is not None
    raw = pipe(record.report, seed=0, steps=8, image=photo, refine=False).frames

    def vessel_contrast(video: np.ndarray) -> float:  # vessels minus their surround, venous phase on
        late = video[len(video) // 3 :].astype(np.float64)
        return float(late[:, vessels].mean() - late[:, ring].mean())

    refined = vessel_contrast(pipe.refine(raw, photo))
    mirrored = vessel_contrast(pipe.refine(raw, np.ascontiguousarray(photo[:, ::-1])))
    assert refined > vessel_contrast(raw) + 2.0 and refined > mirrored + 2.0, (
        refined,
        vessel_contrast(raw),
        mirrored,
    )
