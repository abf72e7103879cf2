"""CLI commands: ``latents`` (encode a dataset once for DiT training) and ``pipeline assemble`` (VAE + trained
DiT + text encoder -> a pipeline folder that ``ffasora generate`` and the demo load)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

pipeline_app = typer.Typer(
    help="Build pipeline folders (model_index.json + vae/ + dit/).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("latents")(latents)
    pipeline_app.command("assemble")(assemble)
    app.add_typer(pipeline_app, name="pipeline")


def _text_encoder(spec: str, max_tokens: int) -> tuple[Any, dict[str, Any]]:
    """The encoder named on the command line ("default" or a local folder) and its pipeline spec."""
    from ffasora.models.text import HFTextEncoder, default_text_encoder

    if spec == "default":
        return default_text_encoder(max_tokens=max_tokens), {"type": "default", "max_tokens": max_tokens}
    folder = Path(spec).resolve()
    return HFTextEncoder(folder, max_tokens=max_tokens), {
        "type": "hf",
        "path": str(folder),
        "max_tokens": max_tokens,
    }


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
) -> None:
    """Encode a dataset once into a latent cache (VAE posteriors + report token states) for `train dit`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ffasora.models.vae import WFVAE
    from ffasora.train.latents import encode_dataset, english_preprocess

    try:
        model = WFVAE.from_pretrained(vae).to(device).eval()
        encoder, spec = _text_encoder(text_encoder, max_tokens)
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
                preprocess=english_preprocess(encoder),
                chunk=chunk,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
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
) -> None:
    """Write a pipeline folder from a VAE, a DiT and a text encoder, reading defaults from the DiT's training."""
    try:
        path = assemble_pipeline(dit, out, vae, text_encoder, frames, height, width, steps, guidance)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    typer.echo(f"wrote {path}")


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
) -> Path:
    """The work of ``ffasora pipeline assemble`` (a function so tests and the demo can call it)."""
    import dataclasses

    from ffasora.diffusion import DiffusionConfig
    from ffasora.models.dit import DiT
    from ffasora.models.vae import WFVAE
    from ffasora.pipeline import FFASoraPipeline, PipelineConfig, TextEncoderSpec

    source_file = dit / "training_source.json"
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
        height=height or int(shape[2]) * 8,
        width=width or int(shape[3]) * 8,
    )
    pipe = FFASoraPipeline(WFVAE.from_pretrained(vae_path), DiT.from_pretrained(dit), spec.build(out), config)
    return pipe.save_pretrained(out)
