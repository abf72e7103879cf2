"""A trained DiT -> a pipeline folder (``ffasora pipeline assemble``): the models, text encoder and recipe it
was trained with, and the generation defaults."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ffasora.diffusion import DiffusionConfig
from ffasora.models.dit import DiT
from ffasora.models.lora import merge_adapter
from ffasora.models.vae import WFVAE
from ffasora.models.vae_shapes import SPATIAL_COMPRESSION
from ffasora.pipeline import FFASoraPipeline, PipelineConfig, TextEncoderSpec


def assemble_pipeline(
    dit: Path,
    out: Path,
    vae: Path | None = None,
    text_encoder: str | None = None,
    frames: int = 21,
    height: int | None = None,
    width: int | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    adapter: Path | None = None,
) -> Path:
    """Write a pipeline folder at ``out`` from the DiT folder ``dit`` and the VAE and text encoder it was
    trained with (``training_source.json`` beside the DiT; ``vae`` / ``text_encoder`` override them), with the
    training's diffusion recipe and the given generation defaults. ``text_encoder``: "default" or a local
    Hugging Face folder. ``adapter``: a LoRA adapter folder trained on ``dit``, merged into the pipeline's DiT;
    its ``training_source.json`` (the LoRA run's cache) then supplies the defaults."""
    source_file = (
        adapter if adapter is not None and (adapter / "training_source.json").is_file() else dit
    ) / ("training_source.json")
    source = json.loads(source_file.read_text()) if source_file.is_file() else {}
    vae_path = vae or (Path(source["vae"]["path"]) if source.get("vae", {}).get("path") else None)
    if vae_path is None:
        raise ValueError(f"{dit}: no training_source.json naming the VAE; pass --vae")
    if text_encoder is not None:
        spec = (
            TextEncoderSpec("default")
            if text_encoder == "default"
            else TextEncoderSpec("hf", str(Path(text_encoder).resolve()))
        )
    else:
        spec = TextEncoderSpec(**(source.get("text_encoder", {}).get("spec") or {"type": "default"}))
    diffusion = DiffusionConfig(**source.get("diffusion", {}))
    diffusion = dataclasses.replace(
        diffusion,
        steps=diffusion.steps if steps is None else steps,
        guidance=diffusion.guidance if guidance is None else guidance,
    )
    shape = source.get("latent_shape") or [0, 0, 64, 64]
    config = PipelineConfig(
        diffusion=diffusion,
        text_encoder=spec,
        num_frames=frames,
        height=height or int(shape[2]) * SPATIAL_COMPRESSION,
        width=width or int(shape[3]) * SPATIAL_COMPRESSION,
    )
    model = DiT.from_pretrained(dit)
    if adapter is not None:
        merge_adapter(model, adapter)
    pipe = FFASoraPipeline(WFVAE.from_pretrained(vae_path), model, spec.build(out), config)
    return pipe.save_pretrained(out)
