"""CLI command ``plan dit``: memory per GPU, the largest batch, FLOPs and estimated time of a DiT training
preset, before anything is built (:mod:`ffasora.train.plan`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ffasora.cli.errors import UserError

plan_app = typer.Typer(
    help="Plan a training run: memory per GPU, batch, FLOPs and time.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    plan_app.command("dit")(plan_dit_command)
    app.add_typer(plan_app, name="plan")


def _latent(value: str | None) -> tuple[int, int, int] | None:
    if value is None:
        return None
    parts = value.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"--latent {value!r}: expected frames x height x width of the latent, e.g. 6x64x64")
    return int(parts[0]), int(parts[1]), int(parts[2])


def plan_dit_command(
    config: Path = typer.Argument(..., help="DiT training preset, e.g. configs/dit/lora_osp_v13_2b.toml."),
    gpus: int = typer.Option(1, "--gpus", help="GPUs (data-parallel; FSDP when the preset says so)."),
    gpu_gib: float = typer.Option(80.0, "--gpu-gib", help="Memory of one GPU in GiB."),
    lora: int | None = typer.Option(None, "--lora", help="Plan LoRA at this rank (0: full fine-tuning)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config value: train.batch_size=2."),
    latent: str | None = typer.Option(
        None, "--latent", help="Latent grid TxHxW (default: the preset's cache, else 6x64x64 = 21x512x512)."
    ),
    text_tokens: int | None = typer.Option(
        None, "--text-tokens", help="Report tokens (default: cache, 512)."
    ),
    videos: int | None = typer.Option(
        None, "--videos", help="Training videos per epoch (default: cache, 2900)."
    ),
    tflops: float = typer.Option(989.0, "--tflops", help="Peak dense bf16 TFLOP/s of one GPU (H100: 989)."),
    mfu: float = typer.Option(0.4, "--mfu", help="Assumed share of the peak a training step reaches."),
) -> None:
    """Print the memory per GPU (weights, gradients, optimizer, EMA, activations with and without
    checkpointing, cached report states), the largest batch that fits, FLOPs and estimated time per step and
    per epoch; exit with an error when the plan does not fit."""
    from ffasora.config import load_config
    from ffasora.train.dit_task import DiTTaskConfig
    from ffasora.train.plan import DataShape, Hardware, data_shape_from_cache, describe, plan_dit, refusal

    if not config.is_file():
        raise UserError(f"{config}: no such preset (e.g. configs/dit/lora_osp_v13_2b.toml)")
    if gpus < 1 or gpu_gib <= 0 or tflops <= 0 or not 0 < mfu <= 1:
        raise UserError("--gpus must be >= 1, --gpu-gib and --tflops > 0, --mfu in (0, 1]")
    if lora is not None and lora < 0:
        raise UserError(f"--lora {lora}: expected a rank >= 0")
    try:
        cfg = load_config(DiTTaskConfig, config, overrides)
    except ValueError as err:
        raise UserError(f"{config}: {err}") from None
    grid = _latent(latent)
    data = None
    if grid is not None or text_tokens is not None or videos is not None:
        found = data_shape_from_cache(cfg.data.cache)
        base = found[0] if found is not None else DataShape()
        data = DataShape(grid or base.latent, text_tokens or base.text_tokens, videos or base.videos)
    plan = plan_dit(cfg, Hardware(gpus, gpu_gib, tflops, mfu), lora, data)
    typer.echo(f"plan: {config}" + (f" with LoRA rank {lora}" if lora else ""))
    for line in describe(plan):
        typer.echo(line)
    reason = refusal(plan)
    if reason:
        raise UserError(f"this plan does not fit: {reason}")
