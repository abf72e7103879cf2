"""CLI commands: ``ffasora train <task>`` and ``ffasora export``.

Under ``torchrun --nproc_per_node N -m ffasora train ...`` every rank runs the same command; only rank 0
draws progress and writes the run folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from ffasora.cli.errors import UserError
from ffasora.train.tasks import TASKS

log = logging.getLogger("ffasora.train")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("train", help=f"Train a model (tasks: {', '.join(sorted(TASKS))}); torchrun for many GPUs.")(
        train_command
    )
    app.command("export", help="Turn a training run's checkpoint into a published model folder.")(
        export_command
    )


def train_command(
    task: str = typer.Argument(..., help=f"What to train: {', '.join(sorted(TASKS))}."),
    config: Path = typer.Option(
        ..., "--config", "-c", help="Preset TOML, e.g. configs/dit/train_small.toml."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a config value: train.optim.lr=3e-4."),
    run: Path = typer.Option(
        ...,
        "--run",
        "--run-dir",
        help="Run folder (under torchrun spell it --run-dir: torchrun claims --run*).",
    ),
    device: str = typer.Option("auto", help="auto (cuda:LOCAL_RANK when available), cpu, cuda."),
) -> None:
    from ffasora.config import load_config
    from ffasora.train.distributed import init_distributed, shutdown
    from ffasora.train.engine import Trainer
    from ffasora.train.tasks import load_task

    # The data is there and readable before any model is built (a big preset takes minutes to build).
    if not config.is_file():
        raise UserError(f"--config {config}: no such file (a preset such as configs/vae/small.toml)")
    if run.exists() and not run.is_dir():
        raise UserError(f"--run {run} is a file; expected a run folder (new, or one to resume)")
    task_obj = load_task(task)
    cfg: Any = load_config(task_obj.config_cls, config, overrides)
    if len(task_obj.build_dataset(cfg, "train")) == 0:  # type: ignore[arg-type]
        raise UserError(f"{task}: the training data named in {config} (and --set) holds no train examples")
    dist = init_distributed(device)
    if task == "dit" and dist.device.type == "cuda":
        _check_plan(cfg, dist.device, dist.world_size)
    try:
        with _progress(dist.is_main) as progress:
            trainer = Trainer(task_obj, cfg, run, task_name=task, dist=dist, progress=progress)
            result = trainer.fit()
        if dist.is_main:
            if trainer.resumed_from is not None:
                log.info("resumed from %s", trainer.resumed_from)
            log.info(
                "%s at step %d (%d skipped, %d rollbacks); checkpoint %s",
                result.status,
                result.step,
                result.skipped,
                result.rollbacks,
                result.checkpoint,
            )
    finally:
        shutdown()


class _progress:
    """A rich progress bar with ETA on rank 0; a no-op elsewhere."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._id: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("train"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        )
        self._bar.__enter__()
        self._id = None
        return self.update

    def update(self, step: int, total: int, row: dict[str, Any]) -> None:
        if self._id is None:
            self._id = self._bar.add_task("train", total=total, completed=0, info="")
        losses = " ".join(f"{k[5:]}={v:.4g}" for k, v in row.items() if k.startswith("loss/"))
        info = f"{losses} {row.get('samples_per_s', 0):.1f} samples/s"
        if "event" in row:
            info = f"{row['event']} at step {row['step']}"
        self._bar.update(self._id, completed=step, info=info)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def export_command(
    run: Path = typer.Argument(..., help="Training run folder."),
    out: Path = typer.Option(..., "--out", help="Published model folder to write."),
    dtype: str = typer.Option("bf16", help="fp32, bf16 or fp16."),
    checkpoint: str = typer.Option("latest", help="latest, a step number, or a checkpoint folder name."),
    ema: bool = typer.Option(
        True, "--ema/--no-ema", help="Publish the EMA weights (default) or the raw ones."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model already in --out."),
) -> None:
    from ffasora.models.pretrained import CONFIG_NAME, WEIGHTS_NAME
    from ffasora.train.checkpoint import resolve_checkpoint
    from ffasora.train.export import DTYPES, export_run, read_run

    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    read_run(run)
    resolve_checkpoint(run, checkpoint)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; expected a model folder")
    existing = [out / name for name in (CONFIG_NAME, WEIGHTS_NAME) if (out / name).exists()]
    if existing and not overwrite:
        raise UserError(
            f"--out {out} already holds a model ({existing[0].name}); pass --overwrite to replace it"
        )
    path = export_run(run, out, dtype=dtype, checkpoint=checkpoint, use_ema=ema)
    typer.echo(f"wrote {path}")


def _check_plan(cfg: Any, device: Any, world_size: int) -> None:
    """Refuse a DiT run whose planned memory (``ffasora plan dit``) exceeds this GPU, before building it."""
    import torch

    from ffasora.train.plan import Hardware, plan_dit, refusal

    gib = torch.cuda.get_device_properties(device).total_memory / 2**30
    reason = refusal(plan_dit(cfg, Hardware(gpus=world_size, gpu_gib=gib)))
    if reason:
        raise UserError(
            f"the planned memory does not fit this {gib:.0f} GiB GPU: {reason} (ffasora plan dit)"
        )
