"""``ffasora vae reconstruct`` and ``ffasora vae stats`` on a tiny dataset folder."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.data.format import DatasetWriter, VideoRecord
from ffasora.models.vae import WFVAE, WFVAEConfig


def make_dataset(root, n: int = 3):
    writer = DatasetWriter(root, creator="test", source="prepare")
    rng = np.random.default_rng(0)
    for i in range(n):
        frames = (rng.random((5, 16, 16)) * 255).astype(np.uint8)
        record = VideoRecord(id=f"v{i}", patient_id=f"p{i}", eye="OD", frames=5, height=16, width=16,
                             report="normal", source="prepare", split="test")  # fmt: skip
        writer.write(record, frames)
    writer.finalize()
    return root


def test_reconstruct_and_stats(tmp_path):
    data = make_dataset(tmp_path / "data")
    cfg = WFVAEConfig(latent_dim=4, base_channels=8, encoder_energy_flow_hidden_size=8,
                      decoder_energy_flow_hidden_size=8, encoder_num_resblocks=1, decoder_num_resblocks=1)  # fmt: skip
    WFVAE(cfg).save_pretrained(tmp_path / "vae")  # RGB model on grey data: repeated in, averaged out
    runner = CliRunner()
    out = tmp_path / "recon.json"
    result = runner.invoke(app, ["vae", "reconstruct", str(data), "--model", str(tmp_path / "vae"),
                                 "--frames", "5", "--chunk", "1", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert [v["id"] for v in record["videos"]] == ["v0", "v1", "v2"]
    psnrs = [v["psnr"] for v in record["videos"]]
    assert np.isclose(record["mean"]["psnr"], np.mean(psnrs)) and all(0 < p < 60 for p in psnrs)
    result = runner.invoke(app, ["vae", "stats", str(data), "--model", str(tmp_path / "vae"),
                                 "--split", "all", "--frames", "5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert len(config["scale"]) == 4 and len(config["shift"]) == 4 and all(s > 0 for s in config["scale"])
    vae = WFVAE.from_pretrained(tmp_path / "vae")
    assert vae.config.scale == tuple(config["scale"])


def test_bad_frame_count_is_a_clear_error(tmp_path):
    data = make_dataset(tmp_path / "data", n=1)
    WFVAE(WFVAEConfig(latent_dim=4, base_channels=8, encoder_energy_flow_hidden_size=8,
                      decoder_energy_flow_hidden_size=8)).save_pretrained(tmp_path / "vae")  # fmt: skip
    result = CliRunner().invoke(
        app, ["vae", "reconstruct", str(data), "--model", str(tmp_path / "vae"), "--frames", "4"]
    )
    assert result.exit_code != 0 and "1 + 4k" in result.output
