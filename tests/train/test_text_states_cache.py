"""``ffasora latents --text-dtype bf16``: a local text encoder runs in bf16 and its report states land in the
cache (so training never loads it); they match the fp32 states to bf16 precision."""

from __future__ import annotations

from pathlib import Path

import torch
from latent_fixtures import tiny_bert, tiny_vae, write_videos
from typer.testing import CliRunner

from ffasora.cli.app import app
from ffasora.train.latents import load_cached, read_cache_manifest


def test_bf16_text_states_are_cached_and_close_to_fp32(tmp_path: Path) -> None:
    data, bert = write_videos(tmp_path / "data", n=2), tiny_bert(tmp_path / "bert")
    tiny_vae().save_pretrained(tmp_path / "vae")
    states = {}
    for dtype in ("fp32", "bf16"):
        out = tmp_path / f"cache_{dtype}"
        args = ["latents", str(data), "--vae", str(tmp_path / "vae"), "--out", str(out), "--split", "train"]
        args += ["--text-encoder", str(bert), "--text-dtype", dtype, "--text-batch", "2"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        records = read_cache_manifest(out)
        states[dtype] = torch.cat([load_cached(out, r)["text"] for r in records])
    assert states["bf16"].dtype == torch.float32 and states["bf16"].shape[-1] == 32
    assert not torch.equal(states["bf16"], states["fp32"])  # the encoder really ran in bf16
    torch.testing.assert_close(states["bf16"], states["fp32"], atol=0.05, rtol=0.05)
    bad = CliRunner().invoke(app, args[:-4] + ["--text-dtype", "fp8"])
    assert bad.exit_code != 0 and "--text-dtype" in bad.output
