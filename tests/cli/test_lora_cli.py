"""``generate --adapter`` and ``pipeline assemble --adapter`` on the bundled model: the adapter is merged, a
foreign adapter is refused before anything loads."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from typer.testing import CliRunner

from ffasora.cli.app import app
from ffasora.models.dit import DiT
from ffasora.models.lora import LoRAConfig, add_lora, merge_adapter, save_adapter

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "pretrained"
FIXTURE = ROOT / "tests" / "fixtures" / "official" / "dit_a"


def _adapter(base: Path, out: Path, rank: int = 2) -> Path:
    model = add_lora(DiT.from_pretrained(base), LoRAConfig(rank=rank, targets=("mlp.fc2", "cross_attn.v")))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return save_adapter(model, LoRAConfig(rank=rank, targets=("mlp.fc2", "cross_attn.v")), out, str(base))


def test_assemble_merges_the_adapter_into_the_pipeline_dit(tmp_path: Path) -> None:
    adapter = _adapter(BUNDLED / "dit", tmp_path / "adapter")
    args = ["pipeline", "assemble", "--dit", str(BUNDLED / "dit"), "--vae", str(BUNDLED / "vae")]
    args += ["--text-encoder", "default", "--out", str(tmp_path / "pipe"), "--adapter", str(adapter)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = DiT.from_pretrained(tmp_path / "pipe" / "dit")
    expected = merge_adapter(DiT.from_pretrained(BUNDLED / "dit"), adapter)
    base = DiT.from_pretrained(BUNDLED / "dit")
    name = "blocks.0.mlp.fc2.weight"
    assert not torch.equal(written.state_dict()[name], base.state_dict()[name])
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(written.state_dict()[key], value, atol=1e-6, rtol=0)
    assert json.loads((tmp_path / "pipe" / "model_index.json").read_text())["dit"] == "dit"


def test_an_adapter_of_another_dit_is_refused(tmp_path: Path) -> None:
    foreign = _adapter(FIXTURE, tmp_path / "foreign")
    gen = CliRunner().invoke(
        app, ["generate", "normal angiogram .", "--adapter", str(foreign), "--out", str(tmp_path / "v.mp4")]
    )
    assert gen.exit_code != 0 and "--adapter" in gen.output and "another config" in gen.output
    args = ["pipeline", "assemble", "--dit", str(BUNDLED / "dit"), "--vae", str(BUNDLED / "vae")]
    args += ["--out", str(tmp_path / "pipe"), "--adapter", str(foreign)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "another config" in result.output
    assert not (tmp_path / "pipe").exists()
    not_adapter = CliRunner().invoke(app, args[:-1] + [str(tmp_path)])
    assert not_adapter.exit_code != 0 and "not an adapter folder" in not_adapter.output


def test_generate_with_an_adapter_equals_a_pipeline_with_merged_weights(tmp_path: Path) -> None:
    """``generate --adapter`` gives the video of the same pipeline whose DiT holds base + adapter."""
    adapter = _adapter(BUNDLED / "dit", tmp_path / "adapter", rank=4)
    merged_pipe = tmp_path / "pipe"
    shutil.copytree(BUNDLED, merged_pipe)
    shutil.rmtree(merged_pipe / "dit")
    merge_adapter(DiT.from_pretrained(BUNDLED / "dit"), adapter).save_pretrained(merged_pipe / "dit")
    small = ["--frames", "5", "--height", "32", "--width", "32", "--steps", "2", "--seed", "3"]
    report = "Right eye: late AV phase: leakage at the macula."
    videos = {}
    for name, extra in {
        "merged": ["-m", str(merged_pipe)],
        "on_the_fly": ["-m", str(BUNDLED), "--adapter", str(adapter)],
        "base": ["-m", str(BUNDLED)],
    }.items():
        out = tmp_path / f"{name}.gif"
        result = CliRunner().invoke(app, ["generate", report, "--out", str(out), *small, *extra])
        assert result.exit_code == 0, result.output
        videos[name] = out.read_bytes()
    assert videos["on_the_fly"] == videos["merged"]
    assert videos["on_the_fly"] != videos["base"]
    provenance = json.loads((tmp_path / "on_the_fly.json").read_text())
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    assert provenance["adapter_sha256"] == hashlib.sha256(weights).hexdigest()
    assert "adapter_sha256" not in json.loads((tmp_path / "merged.json").read_text())
