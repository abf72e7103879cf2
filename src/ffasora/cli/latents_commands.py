"""CLI commands: ``latents`` (encode a dataset once for DiT training), ``pipeline assemble`` (VAE + trained
DiT + text encoder -> a pipeline folder that ``ffasora generate`` and the demo load) and ``pipeline
add-variant`` (another DiT for that folder, sharing its VAE and text encoder)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from ffasora.cli.errors import UserError, check_output_path, refuse_overwrite
from ffasora.models.vae_shapes import TEMPORAL_COMPRESSION

log = logging.getLogger("ffasora.latents")

pipeline_app = typer.Typer(
    help="Build pipeline folders (model_index.json + vae/ + dit/).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("latents")(latents)
    pipeline_app.command("assemble")(assemble)
    pipeline_app.command("add-variant")(add_variant)
    app.add_typer(pipeline_app, name="pipeline")


def _text_encoder(
    spec: str, max_tokens: int, device: str = "cpu", dtype: str = "fp32", batch: int = 32
) -> tuple[Any, dict[str, Any]]:
    """The encoder named on the command line ("default" or a local folder) and its pipeline spec.

    A local folder (mT5-XXL for the official model) runs on ``device`` in ``dtype``, ``batch`` pieces per
    call; its states are cached, so it never sits beside the DiT in training."""
    from ffasora.models.text import HFTextEncoder, default_text_encoder

    if spec == "default":
        return default_text_encoder(max_tokens=max_tokens), {"type": "default", "max_tokens": max_tokens}
    folder = Path(spec).resolve()
    import torch

    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    encoder = HFTextEncoder(folder, max_tokens=max_tokens, device=device, dtype=torch_dtype, batch_size=batch)
    return encoder, {
        "type": "hf",
        "path": str(folder),
        "max_tokens": max_tokens,
    }


def _check_latents_args(
    dataset: Path,
    vae: Path,
    out: Path,
    split: list[str],
    text_encoder: str,
    max_tokens: int,
    frames: int | None,
    size: int | None,
    chunk: int | None,
) -> list[Any]:
    """Everything checkable before a model loads; returns the records to encode."""
    from ffasora.data.dataset import FFADataset
    from ffasora.data.format import video_path
    from ffasora.models.pretrained import find_weights, read_config
    from ffasora.train.latents import CACHE_INFO

    if max_tokens < 1:
        raise UserError(f"--max-tokens {max_tokens}: expected a positive number of tokens (e.g. 512)")
    if chunk is not None and (chunk < TEMPORAL_COMPRESSION or chunk % TEMPORAL_COMPRESSION):
        raise UserError(f"--chunk {chunk}: expected a positive multiple of {TEMPORAL_COMPRESSION} frames")
    if not dataset.is_dir():
        raise UserError(f"{dataset}: no such dataset folder")
    records = []
    for name in dict.fromkeys(split):
        part = FFADataset(dataset, split=name, frames=frames, size=size)  # checks split, frames and size
        records += part.records
    if not records:
        raise UserError(f"{dataset}: no videos in split(s) {', '.join(split)}")
    missing = [r.id for r in records if not video_path(dataset, r.id).is_file()]
    if missing:
        raise UserError(
            f"{dataset}: {len(missing)} video file(s) listed in the manifest are missing "
            f"(e.g. videos/{missing[0]}.npz); run `ffasora validate {dataset}`"
        )
    read_config(vae)
    find_weights(vae)
    if text_encoder != "default" and not (Path(text_encoder) / "config.json").is_file():
        raise UserError(f"--text-encoder {text_encoder}: not 'default' nor a local Hugging Face folder")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; expected a latent cache folder")
    if out.is_dir() and any(out.iterdir()) and not (out / CACHE_INFO).is_file():
        raise UserError(f"--out {out} is a folder that holds no latent cache; choose a new or empty folder")
    return records


def latents(
    dataset: Path = typer.Argument(..., help="FFA dataset folder (from `simulate` or `prepare`)."),
    vae: Path = typer.Option(..., "--vae", help="WF-VAE folder (ours or the official layout)."),
    out: Path = typer.Option(..., "--out", "-o", help="Latent cache folder to write (resumable)."),
    split: list[str] = typer.Option(["train", "val"], "--split", help="Splits to encode (repeatable)."),
    text_encoder: str = typer.Option(
        "default", "--text-encoder", help="'default' (MiniLM) or a local HF folder."
    ),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Cap on text tokens per report."),
    frames: int | None = typer.Option(None, "--frames", help="Resample videos to this many frames (1 + 4k)."),
    size: int | None = typer.Option(None, "--size", help="Resize frames to this square side."),
    chunk: int | None = typer.Option(None, "--chunk", help="VAE encode chunk in frames (multiple of 4)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    text_device: str | None = typer.Option(
        None, "--text-device", help="Where a --text-encoder folder runs (default: --device)."
    ),
    text_dtype: str = typer.Option(
        "fp32", "--text-dtype", help="fp32 or bf16 for a --text-encoder folder (bf16 for mT5-XXL: 11 GiB)."
    ),
    text_batch: int = typer.Option(32, "--text-batch", help="Report pieces per text-encoder call."),
) -> None:
    """Encode a dataset once into a latent cache (VAE posteriors + report token states) for `train dit`.

    Reports go through the pipeline's text path, as in `generate`: Chinese reports reach an English-only
    encoder as canonical English. Every report is checked before anything is written.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ffasora.models.vae import WFVAE
    from ffasora.pipeline import TextPath
    from ffasora.runtime.cpu import enable_cpu_inference
    from ffasora.train.latents import encode_dataset

    records = _check_latents_args(dataset, vae, out, split, text_encoder, max_tokens, frames, size, chunk)
    if text_dtype not in ("fp32", "bf16") or text_batch < 1:
        raise UserError(
            f"--text-dtype {text_dtype!r} / --text-batch {text_batch}: expected fp32 or bf16, >= 1"
        )
    encoder, spec = _text_encoder(text_encoder, max_tokens, text_device or device, text_dtype, text_batch)
    text_path = TextPath(encoder)
    warnings = []
    for record in records:
        try:
            warnings += [f"video {record.id}: {w}" for w in text_path.check(record.report)]
        except ValueError as err:
            raise UserError(f"{dataset}: video {record.id}: {err}") from None
    for warning in warnings[:5]:
        log.warning(warning)
    if len(warnings) > 5:
        log.warning("... and %d more warnings about reports", len(warnings) - 5)
    model = WFVAE.from_pretrained(vae).to(device).eval()
    if model.decoder.conv_out.weight.device.type == "cpu":
        enable_cpu_inference(model)
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as bar:
        task = bar.add_task("encoding", total=None)
        info = encode_dataset(
            dataset,
            out,
            model,
            encoder,
            splits=split,
            frames=frames,
            size=size,
            vae_path=vae.resolve(),
            text_encoder_spec=spec,
            preprocess=text_path.text,
            chunk=chunk,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    typer.echo(f"{out}: {info['counts']} videos, latents {info['latent_shape']}")


def assemble(
    dit: Path = typer.Option(..., "--dit", help="Trained DiT folder (e.g. from `ffasora export`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Pipeline folder to write."),
    vae: Path | None = typer.Option(
        None, "--vae", help="WF-VAE folder (default: the one the DiT's cache used)."
    ),
    text_encoder: str | None = typer.Option(
        None, "--text-encoder", help="'default' or a local HF folder (default: the cache's)."
    ),
    frames: int = typer.Option(21, "--frames", help="Default frame count (1 + 4k)."),
    height: int | None = typer.Option(
        None, "--height", help="Default height (default: from the latent shape)."
    ),
    width: int | None = typer.Option(None, "--width", help="Default width (default: from the latent shape)."),
    steps: int | None = typer.Option(None, "--steps", help="Default sampler steps."),
    guidance: float | None = typer.Option(None, "--guidance", help="Default CFG scale."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a pipeline already in --out."),
    adapter: Path | None = typer.Option(
        None,
        "--adapter",
        help="LoRA adapter folder trained on --dit (`ffasora export` of a LoRA run): merged in.",
    ),
) -> None:
    """Write a pipeline folder from a VAE, a DiT and a text encoder, reading defaults from the DiT's training."""
    from ffasora.models.pretrained import read_config
    from ffasora.pipeline import INDEX_NAME
    from ffasora.train.assemble import assemble_pipeline

    read_config(dit)
    if adapter is not None:
        _check_adapter(adapter, dit)
    check_output_path(out, "--out", folder=True)
    refuse_overwrite([out / INDEX_NAME], overwrite)
    path = assemble_pipeline(dit, out, vae, text_encoder, frames, height, width, steps, guidance, adapter)
    typer.echo(f"wrote {path}")


def add_variant(
    pipeline: Path = typer.Argument(..., help="Pipeline folder (model_index.json, vae/, dit/)."),
    name: str = typer.Argument(..., help="Variant name: lowercase letters, digits, '_' or '-' (e.g. fast)."),
    dit: Path = typer.Option(..., "--dit", help="DiT folder to add (copied in as dit_<name>/)."),
    steps: int | None = typer.Option(None, "--steps", help="The variant's default sampler steps."),
    guidance: float | None = typer.Option(None, "--guidance", help="The variant's default CFG scale."),
    sampler: str | None = typer.Option(None, "--sampler", help="The variant's default sampler."),
    description: str = typer.Option("", "--description", help="One line saying what the variant is."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a variant of that name."),
    refiner: Path | None = typer.Option(
        None,
        "--refiner",
        help="Photograph-guided refiner folder (`ffasora export` of a `train refiner` run) for a DiT that "
        "takes a photograph; copied in as refiner_<name>/.",
    ),
) -> None:
    """Add a DiT to a pipeline folder as a variant (`generate --variant NAME`, the demo's selector): it shares
    the folder's VAE and text encoder; unset settings are the folder's."""
    from ffasora.train.assemble import add_variant as add

    if not (pipeline / "model_index.json").is_file():
        raise UserError(f"{pipeline}: not a pipeline folder (no model_index.json)")
    if not dit.is_dir():
        raise UserError(f"--dit {dit}: no such folder")
    if refiner is not None and not refiner.is_dir():
        raise UserError(f"--refiner {refiner}: no such folder")
    variant = add(
        pipeline,
        name,
        dit,
        steps=steps,
        guidance=guidance,
        sampler=sampler,
        description=description,
        overwrite=overwrite,
        refiner=refiner,
    )
    typer.echo(f"{pipeline}: added variant {name!r} ({variant.dit}/)")


def _check_adapter(adapter: Path, dit: Path) -> None:
    """--adapter: an adapter folder trained on a DiT of --dit's shape, or a clear error before any loading."""
    from ffasora.models.dit import read_dit_config
    from ffasora.models.lora import check_base

    try:
        check_base(adapter, read_dit_config(dit))
    except ValueError as err:
        raise UserError(f"--adapter {adapter}: {err}") from None
