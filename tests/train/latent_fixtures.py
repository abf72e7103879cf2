"""Tiny pieces for the latent-cache and DiT-task tests: a 4-video dataset, a 2-layer BERT, a small WF-VAE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ffasora.data.format import DatasetWriter, VideoRecord
from ffasora.models.dit import DiT, DiTConfig
from ffasora.models.vae import WFVAE, WFVAEConfig
from ffasora.train.config import CheckpointConfig, EMAConfig, LoaderConfig, OptimConfig, TrainConfig

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "leakage", "at", "the", "macula", "normal",
         "disc", "late", "staining", "early", "hyperfluorescence", "no"]  # fmt: skip
REPORTS = [
    "leakage at the macula .",
    "normal disc .",
    "late staining at the disc .",
    "early hyperfluorescence .",
]


def write_videos(root: Path, n: int = 4, frames: int = 5, size: int = 32, seed: int = 0) -> Path:
    """``n`` clearly different grey clips, all in split train: stripes of a different orientation and
    frequency per video, brightening over time with a different curve."""
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, creator="test", source="simulator", config={"n": n})
    yy, xx = np.mgrid[:size, :size] / size
    for i in range(n):
        angle, cycles = np.pi * i / n, 1.0 + i % 3
        stripes = 0.5 + 0.5 * np.cos(2 * np.pi * cycles * (xx * np.cos(angle) + yy * np.sin(angle)))
        curve = np.linspace(0.2, 1.0, frames) ** (1 + i)
        video = 20 + 220 * curve[:, None, None] * stripes[None] + rng.integers(0, 5, (frames, size, size))
        record = VideoRecord(
            id=f"v{i}", patient_id=f"p{i}", eye="OD", frames=frames, height=size, width=size,
            report=REPORTS[i % len(REPORTS)], source="simulator", split="train",
        )  # fmt: skip
        writer.write(record, video.clip(0, 255).astype(np.uint8))
    writer.finalize()
    return root


def tiny_bert(folder: Path, hidden: int = 32) -> Path:
    """A random 2-layer BERT (width ``hidden``) with a word-level vocabulary, saved as a local HF folder."""
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(vocab_size=len(WORDS), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=64, max_position_embeddings=64)
    )  # fmt: skip
    bert.save_pretrained(folder)
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)
    return folder


def tiny_vae(seed: int = 0, latent_dim: int = 4) -> WFVAE:
    torch.manual_seed(seed)
    return WFVAE(
        WFVAEConfig(latent_dim=latent_dim, base_channels=8, encoder_energy_flow_hidden_size=8,
                    decoder_energy_flow_hidden_size=8, in_channels=1, scale=(0.8,) * latent_dim,
                    shift=(0.1,) * latent_dim)
    ).eval()  # fmt: skip


def tiny_dit_config(text_dim: int = 32) -> DiTConfig:
    return DiTConfig(
        in_channels=4, out_channels=4, num_layers=2, num_heads=2, head_dim=12, text_dim=text_dim, sparse_n=1
    )


def tiny_dit(text_dim: int = 32) -> DiT:
    return DiT(tiny_dit_config(text_dim))


def fitted_vae(data: Path, seed: int = 0, latent_dim: int = 4) -> WFVAE:
    """The tiny random VAE with ``scale``/``shift`` fitted to ``data``'s posterior means, so the DiT sees
    unit-variance latents (what the scale/shift of a real WF-VAE are for)."""
    import dataclasses

    from ffasora.data.dataset import FFADataset

    vae = tiny_vae(seed, latent_dim)
    dataset = FFADataset(data, split="all")
    videos = torch.stack([dataset[i]["video"] for i in range(len(dataset))])
    with torch.no_grad():
        mean = vae.encode(videos).mean  # (N, c, t, h, w)
    mu, sd = mean.mean(dim=(0, 2, 3, 4)), mean.std(dim=(0, 2, 3, 4))
    config = dataclasses.replace(vae.config, scale=tuple((1 / sd).tolist()), shift=tuple(mu.tolist()))
    fitted = WFVAE(config)
    fitted.load_state_dict(vae.state_dict())
    return fitted.eval()


def quick_train_config(max_steps: int, batch_size: int, lr: float) -> TrainConfig:
    """A short fp32 run in this process: no EMA, no loader workers, one checkpoint at the end."""
    return TrainConfig(
        max_steps=max_steps,
        batch_size=batch_size,
        seed=0,
        precision="fp32",
        optim=OptimConfig(lr=lr),
        ema=EMAConfig(enabled=False),
        checkpoint=CheckpointConfig(every=max_steps, keep_last=1),
        loader=LoaderConfig(num_workers=0, pin_memory=False),
    )
