"""CLI commands: ``ffasora vae reconstruct`` (PSNR / SSIM / LPIPS of encode-decode) and ``ffasora vae stats``
(per-channel latent shift/scale written into the model's config.json). Training is ``ffasora train vae``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

vae_app = typer.Typer(
    help="WF-VAE tools: reconstruction metrics and latent statistics.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.add_typer(vae_app, name="vae")


def _dataset(root: Path, split: str, frames: int | None, size: int | None, limit: int | None) -> Any:
    from ffasora.data.dataset import FFADataset

    try:
        data = FFADataset(root, split, frames=frames, size=size, channels=1)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    if len(data) == 0:
        raise typer.BadParameter(f"{root}: no videos in split {split!r}")
    return [data[i] for i in range(min(len(data), limit or len(data)))]


def _load_vae(model: Path, winograd: bool = False) -> Any:
    """The WF-VAE at ``model``, on the CPU inference runtime (these commands run on the CPU)."""
    from ffasora.models.vae import WFVAE
    from ffasora.runtime.cpu import enable_cpu_inference

    try:
        return enable_cpu_inference(WFVAE.from_pretrained(model), winograd=winograd)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err


# per-video columns: against the input; then against the noise-free twin (simulated datasets only)
FIDELITY_COLUMNS = (
    "psnr", "ssim", "lpips", "psnr_clean", "ssim_clean", "vessel_retention", "dot_retention",
    "visibility", "visibility_input",
)  # fmt: skip


def _has_clean_twins(root: Path, shape: Any) -> bool:
    """A simulated dataset read at its stored frame count and size: each video has a noise-free twin."""
    from ffasora.data.format import read_info

    config = read_info(root).get("config") or {}
    stored = (config.get("frames"), config.get("size"), config.get("size"))
    return read_info(root).get("source") == "simulator" and tuple(shape) == stored


@vae_app.command("reconstruct")
def reconstruct(
    dataset: Path = typer.Argument(..., help="FFA dataset folder."),
    model: Path = typer.Option(
        ..., "--model", help="WF-VAE folder (ours, diffusers, or config.json + .ckpt)."
    ),
    split: str = typer.Option("test", help="train, val, test or all."),
    frames: int | None = typer.Option(21, help="Frames per clip (1 + 4k); longer videos are resampled."),
    size: int | None = typer.Option(None, help="Square size in pixels (default: as stored)."),
    limit: int | None = typer.Option(None, help="Use at most this many videos."),
    chunk: int | None = typer.Option(2, help="Latent frames per decode chunk (0: whole clip)."),
    tile: int | None = typer.Option(
        None, help="Spatial decode tile in latent pixels (exact, bounds memory)."
    ),
    lpips_trunk: Path | None = typer.Option(
        None, help="Local torchvision alexnet/vgg16 state dict for LPIPS."
    ),
    lpips_net: str = typer.Option("alex", help="alex (the paper's evaluation) or vgg."),
    lpips_lin: Path | None = typer.Option(
        None, help="LPIPS calibration file (lin layers); else uncalibrated."
    ),
    out: Path | None = typer.Option(None, help="Write per-video and mean metrics as JSON here."),
    winograd: bool = typer.Option(
        False,
        help="Winograd F(4x4, 3x3) convolutions on CPU: ~1.8x faster for wide models, ~3e-5 from exact.",
    ),
) -> None:
    """Encode and decode every video (posterior mean) and report PSNR, SSIM (and LPIPS) per video and mean.

    On a simulated dataset at its stored frames and size, also the fidelity against each video's noise-free
    twin: PSNR / SSIM in the field of view, vessel and microaneurysm contrast retention
    (``ffasora.evaluate.vessels``), and the reconstruction's vessel visibility beside the input's.
    """
    import numpy as np
    import torch
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    from ffasora.data.build import clean_twin
    from ffasora.evaluate.paired import psnr, ssim
    from ffasora.evaluate.vessels import paired_fidelity, vessel_visibility
    from ffasora.train.vae_losses import LPIPS
    from ffasora.train.vae_task import to_uint8

    items = _dataset(dataset, split, frames, size, limit)
    vae = _load_vae(model, winograd=winograd)
    if chunk:
        vae.enable_chunking(chunk)
    if tile:
        vae.enable_tiling(tile)
    lpips = LPIPS(lpips_trunk, lpips_net, lpips_lin) if lpips_trunk else None
    twins = _has_clean_twins(dataset, items[0]["video"].shape[-3:])
    rows: list[dict[str, Any]] = []
    with torch.inference_mode():
        for item in track(items, description="reconstructing", transient=True):
            x = item["video"][None]  # (1, 1, T, H, W)
            z = vae.encode(x).mean
            recon = vae.decode(z, channels=1).clamp(-1, 1)
            real, fake = to_uint8(x[0]), to_uint8(recon[0])
            row: dict[str, Any] = {
                "id": item["id"],
                "psnr": float(np.mean([psnr(a, b) for a, b in zip(fake, real, strict=True)])),
                "ssim": float(np.mean([ssim(a, b) for a, b in zip(fake, real, strict=True)])),
            }
            if lpips is not None:
                frames_x = x[0].transpose(0, 1).expand(-1, 3, -1, -1)  # (T, 3, H, W)
                frames_r = recon[0].transpose(0, 1).expand(-1, 3, -1, -1)
                row["lpips"] = float(lpips(frames_r, frames_x).mean())
            if twins:
                twin = clean_twin(dataset, item["id"])
                fidelity = paired_fidelity(fake, twin.frames, twin.masks, twin.phases)
                row.update({f"{k}_clean" if k in ("psnr", "ssim") else k: v for k, v in fidelity.items()})
                row["visibility"] = vessel_visibility(fake)
                row["visibility_input"] = vessel_visibility(real)
            rows.append(row)
    keys = [k for k in FIDELITY_COLUMNS if any(k in r for r in rows)]
    mean = {k: float(np.nanmean([r.get(k, np.nan) for r in rows])) for k in keys}
    table = Table(title=f"WF-VAE reconstruction: {model} on {dataset} ({split}, {len(rows)} videos)")
    for name in ("id", *keys):
        table.add_column(name, justify="left" if name == "id" else "right")
    for r in rows:
        table.add_row(r["id"], *[f"{r.get(k, np.nan):.4f}" for k in keys])
    table.add_row("mean", *[f"{mean[k]:.4f}" for k in keys], style="bold")
    Console().print(table)
    if out is not None:
        record = {"model": str(model), "dataset": str(dataset), "split": split, "frames": frames, "size": size,
                  "lpips_net": lpips_net if lpips else None, "lpips_calibrated": bool(lpips_lin), "mean": mean,
                  "videos": rows}  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n")


@vae_app.command("stats")
def stats(
    dataset: Path = typer.Argument(..., help="FFA dataset folder."),
    model: Path = typer.Option(..., "--model", help="WF-VAE folder whose config.json gets scale/shift."),
    split: str = typer.Option("train", help="train, val, test or all."),
    frames: int | None = typer.Option(21, help="Frames per clip (1 + 4k)."),
    size: int | None = typer.Option(None, help="Square size in pixels (default: as stored)."),
    limit: int | None = typer.Option(None, help="Use at most this many videos."),
    seed: int = typer.Option(0, help="Seed of the posterior samples."),
    write: bool = typer.Option(True, "--write/--no-write", help="Write scale/shift into MODEL/config.json."),
) -> None:
    """Per-channel latent shift/scale (DiT latents = (z - shift) * scale) measured on posterior samples."""
    import torch

    from ffasora.models.pretrained import read_config
    from ffasora.models.vae import latent_statistics

    items = _dataset(dataset, split, frames, size, limit)
    vae = _load_vae(model)
    generator = torch.Generator().manual_seed(seed)
    shift, scale = latent_statistics(vae, (item["video"][None] for item in items), generator)
    typer.echo(json.dumps({"videos": len(items), "shift": shift, "scale": scale}))
    if write:
        config = read_config(model)
        config["shift"], config["scale"] = list(shift), list(scale)
        (model / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        typer.echo(f"wrote shift/scale of {len(shift)} channels into {model / 'config.json'}")
