"""WF-VAE training on the shared engine: 50 steps on simulated clips lower the reconstruction loss."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from torch.utils.data import Dataset

from ffasora.models.vae import WFVAE, WFVAEConfig
from ffasora.train.config import (
    CheckpointConfig,
    EMAConfig,
    LoaderConfig,
    LoggingConfig,
    OptimConfig,
    TrainConfig,
)
from ffasora.train.engine import Trainer
from ffasora.train.tasks import load_task
from ffasora.train.vae_task import VAELossConfig, VAESheetConfig, VAETask, VAETaskConfig


class Angiograms(Dataset):
    """Grey clips of bright curved 'vessels' whose contrast fills in over time, like an FFA filling phase."""

    def __init__(self, n: int = 4, frames: int = 5, size: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
        self.clips = []
        for _ in range(n):
            a, b, c = (torch.rand(3, generator=g) - 0.5) * 2
            vessel = torch.exp(-(((yy - a * xx**2 - b * xx - c) / 0.08) ** 2))
            fill = torch.linspace(0.2, 1.0, frames).view(frames, 1, 1)
            self.clips.append((vessel * fill * 1.6 - 0.8)[None].clamp(-1, 1))  # (1, T, H, W)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        return {"video": self.clips[i], "id": str(i)}


class SimulatedVAETask(VAETask):
    def build_dataset(self, cfg, split):
        return Angiograms(frames=cfg.data.frames, size=cfg.data.size)


def test_vae_task_is_registered():
    assert isinstance(load_task("vae"), VAETask)


def test_fifty_steps_lower_the_loss(tmp_path):
    model = WFVAEConfig(
        latent_dim=4, base_channels=8, encoder_energy_flow_hidden_size=8, decoder_energy_flow_hidden_size=8,
        encoder_num_resblocks=1, decoder_num_resblocks=1, in_channels=1,
    )  # fmt: skip
    cfg = VAETaskConfig(
        model=model,
        loss=VAELossConfig(disc_start=20, disc_width=8, disc_layers=2),
        sheets=VAESheetConfig(every=25, dir=str(tmp_path / "sheets")),
        train=TrainConfig(
            max_steps=50, batch_size=2, optim=OptimConfig(lr=2e-3), ema=EMAConfig(enabled=False),
            checkpoint=CheckpointConfig(every=1000), loader=LoaderConfig(num_workers=0),
            logging=LoggingConfig(every=1),
        ),
    )  # fmt: skip
    cfg = replace(cfg, data=replace(cfg.data, frames=5, size=32))
    result = Trainer(SimulatedVAETask(), cfg, tmp_path / "run").fit()
    assert result.step == 50
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    l1 = [r["l1"] for r in rows if "l1" in r and math.isfinite(r["l1"])]
    assert len(l1) >= 30
    assert sum(l1[-5:]) / 5 < 0.7 * sum(l1[:5]) / 5, l1
    assert any("loss/disc" in r for r in rows)  # the discriminator trained after disc_start
    # one sheet per 25-step period, at its first generator step (step 25 is a discriminator step)
    assert sorted(p.name for p in (tmp_path / "sheets").iterdir()) == [
        "recon_0000000.png",
        "recon_0000026.png",
    ]
    task = VAETask()
    out = task.export(WFVAE(model), cfg, tmp_path / "export", torch.float32)
    assert WFVAE.from_pretrained(out).config == model


def test_lpips_with_a_local_trunk(tmp_path):
    from torch import nn

    from ffasora.train.vae_losses import LPIPS

    torch.manual_seed(0)
    trunk = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
    )  # torchvision alexnet().features layout, random weights: tests the plumbing, not the metric
    torch.save({f"features.{k}": v for k, v in trunk.state_dict().items()}, tmp_path / "alex.pth")
    lpips = LPIPS(tmp_path / "alex.pth", "alex")
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    b = (a + 0.3 * torch.randn_like(a)).clamp(-1, 1)
    assert torch.allclose(lpips(a, a), torch.zeros(2))
    assert (lpips(a, b) > 0).all() and lpips(a, b).shape == (2,)
    assert [getattr(lpips, f"lin{k}").shape[1] for k in range(5)] == [64, 192, 384, 256, 256]


def test_freeze_encoder_trains_the_decoder_alone(tmp_path):
    """Decoder-only fine-tuning keeps the latent space: encoder weights (so latents) unchanged, decoder moves."""
    model = WFVAEConfig(
        latent_dim=4, base_channels=8, encoder_energy_flow_hidden_size=8, decoder_energy_flow_hidden_size=8,
        encoder_num_resblocks=1, decoder_num_resblocks=1, in_channels=1,
    )  # fmt: skip
    torch.manual_seed(0)
    WFVAE(model).save_pretrained(tmp_path / "init")
    before = WFVAE.from_pretrained(tmp_path / "init").state_dict()
    cfg = VAETaskConfig(
        model=model,
        loss=VAELossConfig(disc_weight=0.0),
        train=TrainConfig(
            max_steps=5, batch_size=2, optim=OptimConfig(lr=2e-3), ema=EMAConfig(enabled=False),
            checkpoint=CheckpointConfig(every=1000), loader=LoaderConfig(num_workers=0),
            logging=LoggingConfig(every=1),
        ),
        init=str(tmp_path / "init"),
        freeze_encoder=True,
    )  # fmt: skip
    cfg = replace(cfg, data=replace(cfg.data, frames=5, size=32))
    trainer = Trainer(SimulatedVAETask(), cfg, tmp_path / "run")
    assert trainer.fit().step == 5
    after = trainer.models["model"].state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("decoder.") for k in moved), sorted(moved)[:5]
    with pytest.raises(ValueError, match="freeze_encoder needs init"):
        VAETask().build_models(replace(cfg, init=""))
