"""A saved tiny pipeline with every weight random, for end-to-end tests of the pipeline and ``generate``:
2-layer BERT (width 32), WF-VAE (base 8, 4 latent channels), DiT (2 blocks of 24), 5 frames of 32 px."""

from __future__ import annotations

from pathlib import Path

import torch

from ffasora.diffusion import DiffusionConfig
from ffasora.models.dit import DiT, DiTConfig
from ffasora.models.image_condition import image_condition_channels
from ffasora.models.text import HFTextEncoder
from ffasora.models.vae import WFVAE, WFVAEConfig
from ffasora.pipeline import FFASoraPipeline, PipelineConfig, TextEncoderSpec

WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    ".",
    "leakage",
    "at",
    "the",
    "macula",
    "normal",
    "disc",
    "late",
]


def save_tiny_pipeline(
    root: Path,
    *,
    steps: int = 3,
    guidance: float = 4.0,
    image: bool = False,
    words: list[str] | None = None,
    max_tokens: int = 64,
) -> Path:
    """Write the pipeline folder to ``root``; ``image`` gives the DiT a colour-photograph condition, ``words``
    replaces the tiny encoder's vocabulary (default :data:`WORDS`) and ``max_tokens`` its report length."""
    words = WORDS if words is None else words
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=max(64, max_tokens),
        )
    )  # fmt: skip
    bert.save_pretrained(root / "text_encoder")
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(root / "text_encoder")
    vae = WFVAE(
        WFVAEConfig(
            latent_dim=4, base_channels=8, encoder_energy_flow_hidden_size=8, decoder_energy_flow_hidden_size=8,
            in_channels=1, scale=(0.5,) * 4, shift=(0.1,) * 4,
        )
    )  # fmt: skip
    cfg = DiTConfig(
        in_channels=4, out_channels=4, num_layers=2, num_heads=2, head_dim=12, text_dim=32, sparse_n=1
    )
    dit = DiT(cfg).with_image_condition(image_condition_channels(4)) if image else DiT(cfg)
    with torch.no_grad():  # a fresh DiT outputs 0 and ignores text and image; make every weight matter
        for p in dit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    config = PipelineConfig(
        diffusion=DiffusionConfig(steps=steps, guidance=guidance),
        text_encoder=TextEncoderSpec(type="hf", path="text_encoder", max_tokens=max_tokens),
        num_frames=5,
        height=32,
        width=32,
    )
    encoder = HFTextEncoder(root / "text_encoder", max_tokens=max_tokens)
    FFASoraPipeline(vae, dit, encoder, config).save_pretrained(root)
    return root
