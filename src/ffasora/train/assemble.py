"""A trained DiT -> a pipeline folder (``ffasora pipeline assemble``): the models, text encoder and recipe it
was trained with, and the generation defaults; or -> a variant of an existing folder that shares its VAE and
text encoder (``ffasora pipeline add-variant``)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from ffasora.diffusion import DiffusionConfig
from ffasora.models.dit import DiT, read_dit_config
from ffasora.models.image_condition import image_condition_channels
from ffasora.models.lora import merge_adapter
from ffasora.models.pretrained import read_config
from ffasora.models.refiner import RefinerConfig
from ffasora.models.vae import WFVAE, WFVAEConfig
from ffasora.models.vae_shapes import SPATIAL_COMPRESSION
from ffasora.pipeline import (
    INDEX_NAME,
    FFASoraPipeline,
    PipelineConfig,
    PipelineFolder,
    TextEncoderSpec,
    resolve_settings,
)
from ffasora.pipeline_variants import Variant, check_name


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
    if "distilled" in source and "diffusion" not in source:
        raise ValueError(
            f"{source_file}: a distilled student whose trajectories predate the recorded teacher recipe; add it to "
            "its teacher's pipeline instead: ffasora pipeline add-variant TEACHER_PIPELINE NAME --dit "
            f"{dit} --steps 4 --guidance 1 --sampler euler"
        )
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


def add_variant(
    pipeline: Path,
    name: str,
    dit: Path,
    *,
    steps: int | None = None,
    guidance: float | None = None,
    sampler: str | None = None,
    description: str = "",
    overwrite: bool = False,
    refiner: Path | None = None,
) -> Variant:
    """Add the DiT folder ``dit`` to the pipeline folder ``pipeline`` as the variant ``name``
    (:mod:`ffasora.pipeline_variants`): copied in as ``dit_<name>/``, listed in ``model_index.json`` with the
    given diffusion overrides. Everything is checked before anything is written: the name, the DiT against the
    folder's VAE (latent channels, image channels) and text encoder, the merged settings against the DiT's
    patch; an existing variant of that name is replaced only with ``overwrite``. ``refiner``: a photograph-guided
    refiner folder for a DiT that takes a photograph, copied in as ``refiner_<name>/``. ``model_index.json`` is
    replaced atomically, after the model folders are in place."""
    index_file = pipeline / INDEX_NAME
    check_name(name, str(index_file))
    folder = PipelineFolder.read(pipeline)
    if name in folder.variants and not overwrite:
        raise ValueError(f"{index_file}: variant {name!r} exists; pass --overwrite to replace it")
    config = read_dit_config(dit)
    vae = WFVAEConfig.from_dict(read_config(folder.vae), f"{folder.vae}/config.json")
    text_dim = read_dit_config(folder.dit).text_dim
    if (config.in_channels, config.out_channels) != (vae.latent_dim, vae.latent_dim):
        raise ValueError(
            f"{dit}: DiT channels in/out {config.in_channels}/{config.out_channels} do not match the latent "
            f"channels {vae.latent_dim} of the pipeline's VAE ({folder.vae})"
        )
    if config.image_channels and config.image_channels != image_condition_channels(vae.latent_dim):
        raise ValueError(
            f"{dit}: image_channels {config.image_channels} do not fit the pipeline's VAE: a colour photograph "
            f"encodes to {image_condition_channels(vae.latent_dim)} channels"
        )
    if config.text_dim != text_dim:
        raise ValueError(
            f"{dit}: DiT text_dim {config.text_dim} != the pipeline's text encoder width {text_dim}"
        )
    if refiner is not None:
        if not config.image_channels:
            raise ValueError(
                f"--refiner {refiner}: the DiT {dit} takes no photograph, so nothing would run it"
            )
        RefinerConfig.from_dict(read_config(refiner), f"{refiner}/config.json")
    overrides = {"steps": steps, "guidance": guidance, "sampler": sampler}
    settings = {k: v for k, v in overrides.items() if v is not None}
    variant = Variant(
        name, f"dit_{name}", settings, description, f"refiner_{name}" if refiner is not None else ""
    )
    diffusion = variant.apply(folder.config.diffusion, str(index_file))
    resolve_settings(dataclasses.replace(folder.config, diffusion=diffusion), config.patch_size)
    target = pipeline / variant.dit
    if dit.resolve() == target.resolve():
        raise ValueError(f"{dit} is the variant's own folder in {pipeline}; give the DiT from elsewhere")

    _copy_folder(dit, target)
    if refiner is not None:
        _copy_folder(refiner, pipeline / variant.refiner)
    index = json.loads(index_file.read_text(encoding="utf-8"))
    index["variants"] = {**index.get("variants", {}), name: variant.to_dict()}
    written = index_file.with_name(f".{INDEX_NAME}.{os.getpid()}.tmp")
    written.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    os.replace(written, index_file)
    return variant


def _copy_folder(source: Path, target: Path) -> None:
    """``source`` copied to ``target`` through a staging folder, replacing what was there."""
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
