"""FFASoraPipeline end to end with tiny random models: shapes, determinism, save/load, input errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ffasora.diffusion import DiffusionConfig
from ffasora.models.dit import DiT, DiTConfig
from ffasora.models.pretrained import weights_sha256
from ffasora.pipeline import FFASoraPipeline, GeneratedVideo, PipelineConfig
from tiny_pipeline import save_tiny_pipeline

SMALL = dict(num_frames=5, height=32, width=32, steps=3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("pipeline"))


@pytest.fixture(scope="module")
def pipe(folder: Path) -> FFASoraPipeline:
    return FFASoraPipeline.from_pretrained(folder)


def test_generates_frames_and_provenance(pipe: FFASoraPipeline) -> None:
    out = pipe("leakage at the macula .", seed=1)
    assert isinstance(out, GeneratedVideo)
    assert out.frames.shape == (5, 32, 32) and out.frames.dtype == np.uint8
    meta = out.metadata
    assert meta["synthetic"] is True and meta["report"] == "leakage at the macula ." and meta["seed"] == 1
    assert (meta["sampler"], meta["steps"], meta["guidance"]) == ("euler_ancestral", 3, 4.0)
    assert meta["network_evaluations"] == 3 and len(meta["model_hashes"]["dit"]) == 64
    json.dumps(meta)  # provenance must be writable beside the video


def test_deterministic_per_seed_and_conditioned_on_the_report(pipe: FFASoraPipeline) -> None:
    a = pipe("leakage at the macula .", seed=7).frames
    np.testing.assert_array_equal(a, pipe("leakage at the macula .", seed=7).frames)
    assert not np.array_equal(a, pipe("leakage at the macula .", seed=8).frames)
    assert not np.array_equal(a, pipe("normal disc .", seed=7).frames)


def test_save_and_load_round_trip(pipe: FFASoraPipeline, folder: Path, tmp_path: Path) -> None:
    (tmp_path / "copy").mkdir()
    pipe.save_pretrained(tmp_path / "copy")
    index = json.loads((tmp_path / "copy" / "model_index.json").read_text())
    assert index["vae"] == "vae" and index["diffusion"]["objective"] == "v_prediction"
    assert (tmp_path / "copy" / "text_encoder" / "config.json").is_file()  # the encoder travels along
    again = FFASoraPipeline.from_pretrained(tmp_path / "copy")
    assert again.model_hashes["dit"] == pipe.model_hashes["dit"] and again.config == pipe.config
    np.testing.assert_array_equal(
        again("late leakage .", seed=3).frames, pipe("late leakage .", seed=3).frames
    )


def test_guidance_batches_cond_and_uncond(pipe: FFASoraPipeline) -> None:
    batches: list[int] = []
    hook = pipe.dit.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    try:
        pipe("late leakage .", guidance=1.0, **SMALL)
        pipe("late leakage .", guidance=3.0, **SMALL)
    finally:
        hook.remove()
    assert batches == [1, 1, 1, 2, 2, 2]


def test_phases_report_progress_and_other_samplers(pipe: FFASoraPipeline) -> None:
    seen: list[tuple[str, int, int]] = []
    pipe("late leakage .", sampler="dpmpp_2m", progress=lambda *a: seen.append(a), **SMALL)
    assert seen[:3] == [("denoise", 1, 3), ("denoise", 2, 3), ("denoise", 3, 3)]
    decode = [event for event in seen[3:] if event[0] == "decode"]
    assert len(decode) == len(seen) - 3 and decode and decode[-1][1] == decode[-1][2]  # ends complete


def test_flow_recipe_end_to_end(pipe: FFASoraPipeline) -> None:
    config = PipelineConfig(diffusion=DiffusionConfig(objective="flow", sampler="heun", steps=2, shift=3.0))
    flow = FFASoraPipeline(pipe.vae, pipe.dit, pipe.text_encoder, config)
    out = flow("late leakage .", num_frames=9, height=16, width=48)
    assert out.frames.shape == (9, 16, 48) and out.metadata["network_evaluations"] == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"report": "  "}, "report"),
        ({"num_frames": 20}, "num_frames=20.*17 or 21"),
        ({"height": 40}, "height=40.*multiple of 16"),
        ({"width": 0}, "width=0"),
        ({"steps": 0}, "steps=0"),
        ({"guidance": -1.0}, "guidance"),
        ({"sampler": "nonsense"}, "unknown sampler"),
    ],
)
def test_bad_inputs_raise_clear_errors(pipe: FFASoraPipeline, kwargs: dict, match: str) -> None:
    args = {"report": "late leakage ."} | kwargs
    with pytest.raises(ValueError, match=match):
        pipe(**args)


def test_folder_errors(tmp_path: Path, pipe: FFASoraPipeline) -> None:
    with pytest.raises(ValueError, match="model_index.json"):
        FFASoraPipeline.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="text_dim"):
        small = DiT(
            DiTConfig(in_channels=4, out_channels=4, num_layers=1, num_heads=1, head_dim=6, text_dim=7)
        )
        FFASoraPipeline(pipe.vae, small, pipe.text_encoder)


def test_chunked_and_tiled_decode_are_wired(pipe: FFASoraPipeline) -> None:
    whole = pipe("late leakage .", num_frames=9, seed=2).frames
    chunked = FFASoraPipeline(
        pipe.vae, pipe.dit, pipe.text_encoder, dataclasses.replace(pipe.config, decode_chunk=1)
    )
    diff = np.abs(chunked("late leakage .", num_frames=9, seed=2).frames.astype(int) - whole.astype(int))
    assert diff.max() <= 1  # causal-cache chunks equal the whole clip up to rounding
    seen: list[tuple[str, int, int]] = []
    tiled_config = dataclasses.replace(pipe.config, decode_tile=2, decode_tile_overlap=1)
    tiled = FFASoraPipeline(pipe.vae, pipe.dit, pipe.text_encoder, tiled_config)
    frames = tiled("late leakage .", num_frames=9, seed=2, progress=lambda *a: seen.append(a)).frames
    assert frames.shape == whole.shape and seen[-1][0] == "decode" and seen[-1][1] == seen[-1][2]


def test_saved_video_carries_provenance(pipe: FFASoraPipeline, tmp_path: Path) -> None:
    from ffasora.io.video import read_metadata, read_video

    out = pipe("late leakage .", seed=4)
    path = out.save(tmp_path / "clip.mp4")
    assert json.loads((tmp_path / "clip.json").read_text()) == out.metadata
    tags = read_metadata(path)
    assert "synthetic" in tags["comment"] and json.loads(tags["ffasora"])["seed"] == 4
    assert read_video(path)[0].shape == out.frames.shape
    out.save(tmp_path / "clip.gif")
    with pytest.raises(ValueError, match=".avi"):
        out.save(tmp_path / "clip.avi")


def test_cli_generate_jsonl_batch_with_multiline_reports_ids_and_seeds(folder: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ffasora.cli import app

    batch = tmp_path / "reports.jsonl"
    entries = [
        {"report": "late leakage .\nnormal disc .", "id": "case 1", "seed": 11},
        {"report": "normal disc ."},
    ]
    batch.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    args = [
        "generate",
        "--model",
        str(folder),
        "--steps",
        "2",
        "--batch",
        str(batch),
        "--out",
        str(tmp_path / "o"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "o" / "case_1.json").read_text())
    assert first["seed"] == 11 and "\n" in first["report"]
    assert json.loads((tmp_path / "o" / "00001.json").read_text())["seed"] == 1
    batch.write_text('{"id": "x"}\n')
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "line 1" in result.output


def test_cli_generate_one_report_and_a_batch(folder: Path, tmp_path: Path) -> None:
    """``ffasora generate`` end to end (kept here to share the tiny pipeline folder)."""
    from typer.testing import CliRunner

    from ffasora.cli import app

    runner = CliRunner()
    args = ["generate", "--model", str(folder), "--steps", "2", "--seed", "5"]
    result = runner.invoke(app, [*args, "late leakage .", "--out", str(tmp_path / "one.mp4")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "one.json").read_text())["seed"] == 5
    reports = tmp_path / "reports.txt"
    reports.write_text("late leakage .\n\nnormal disc .\n")
    result = runner.invoke(app, [*args, "--batch", str(reports), "--out", str(tmp_path / "many")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == [
        "00000.json",
        "00000.mp4",
        "00002.json",
        "00002.mp4",
    ]
    assert json.loads((tmp_path / "many" / "00002.json").read_text())["seed"] == 7
    bad = runner.invoke(app, [*args, "late leakage .", "--frames", "20", "--out", str(tmp_path / "x.mp4")])
    assert bad.exit_code != 0 and "--frames 20" in bad.output and not (tmp_path / "x.mp4").exists()


ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "official"


def test_official_layout_folders_and_the_default_text_encoder(tmp_path: Path) -> None:
    """A pipeline folder may point at official WF-VAE / Open-Sora Plan folders (RGB VAE, grey output) and use
    the bundled MiniLM encoder (384-d, the fixture DiT's caption width)."""
    index = {"vae": str(FIXTURES / "wfvae_a"), "dit": str(FIXTURES / "dit_a"), "num_frames": 5, "height": 32}
    index |= {"width": 32, "diffusion": {"steps": 2}, "text_encoder": {"type": "default"}}
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    pipe = FFASoraPipeline.from_pretrained(tmp_path)
    out = pipe("Late leakage at the macula.", seed=0)
    assert out.frames.shape == (5, 32, 32) and out.frames.dtype == np.uint8
    # provenance names the encoder and hashes its weights; no local path
    assert out.metadata["text_encoder"] == "all-MiniLM-L6-v2"
    assert out.metadata["model_hashes"]["text_encoder"] == weights_sha256(pipe.text_encoder.model)
    assert "/" not in json.dumps(out.metadata["model_hashes"]) + out.metadata["text_encoder"]


def test_the_vae_decodes_on_the_cpu_runtime(pipe: FFASoraPipeline) -> None:
    """The pipeline switches the CPU inference runtime on for a VAE on the CPU; frames are the plain model's."""
    from ffasora.runtime.cpu import disable_cpu_inference, enable_cpu_inference, is_enabled

    assert is_enabled(pipe.vae)
    latents = torch.randn(1, pipe.vae.config.latent_dim, 2, 4, 4, generator=torch.Generator().manual_seed(5))
    fast = pipe.decode(latents)
    disable_cpu_inference(pipe.vae)
    try:
        plain = pipe.decode(latents)
    finally:
        enable_cpu_inference(pipe.vae)
    assert np.abs(fast.astype(int) - plain.astype(int)).max() <= 1
